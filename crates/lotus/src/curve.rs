//! Small pieces of secp256k1 arithmetic that libsecp256k1 does not expose: reduction of hash
//! outputs mod n and the quadratic-residue test of a point's y coordinate. Both operate on
//! public data only, so variable-time code is fine here.

use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, PublicKey, Scalar};

/// The group order n, big-endian.
pub const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// The field prime p, big-endian.
pub const FIELD_PRIME: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xfc, 0x2f,
];

/// Little-endian 64-bit limbs of a 256-bit big-endian number.
type Limbs = [u64; 4];

fn to_limbs(be: &[u8; 32]) -> Limbs {
    let mut limbs = [0u64; 4];
    for (i, limb) in limbs.iter_mut().enumerate() {
        let start = 32 - 8 * (i + 1);
        *limb = u64::from_be_bytes(be[start..start + 8].try_into().expect("8 bytes"));
    }
    limbs
}

fn from_limbs(limbs: &Limbs) -> [u8; 32] {
    let mut be = [0u8; 32];
    for (i, limb) in limbs.iter().enumerate() {
        let start = 32 - 8 * (i + 1);
        be[start..start + 8].copy_from_slice(&limb.to_be_bytes());
    }
    be
}

fn less_than(a: &Limbs, b: &Limbs) -> bool {
    for i in (0..4).rev() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

/// a - b, wrapping; callers guarantee a >= b.
fn sub(a: &Limbs, b: &Limbs) -> Limbs {
    let mut out = [0u64; 4];
    let mut borrow = false;
    for i in 0..4 {
        let (d1, b1) = a[i].overflowing_sub(b[i]);
        let (d2, b2) = d1.overflowing_sub(borrow as u64);
        out[i] = d2;
        borrow = b1 || b2;
    }
    out
}

fn shr(a: &Limbs, bits: u32) -> Limbs {
    debug_assert!(bits < 64);
    if bits == 0 {
        return *a;
    }
    let mut out = [0u64; 4];
    for i in 0..4 {
        out[i] = a[i] >> bits;
        if i < 3 {
            out[i] |= a[i + 1] << (64 - bits);
        }
    }
    out
}

fn is_zero(a: &Limbs) -> bool {
    a.iter().all(|&l| l == 0)
}

/// True iff the big-endian number is below n.
pub fn is_below_order(be: &[u8; 32]) -> bool {
    less_than(&to_limbs(be), &to_limbs(&ORDER))
}

/// True iff the big-endian number is below p.
pub fn is_below_field_prime(be: &[u8; 32]) -> bool {
    less_than(&to_limbs(be), &to_limbs(&FIELD_PRIME))
}

/// Interprets 32 big-endian bytes (usually a hash) as an integer and reduces it mod n.
/// One subtraction suffices because 2^256 < 2n.
pub fn reduce_to_scalar(be: &[u8; 32]) -> Scalar {
    let value = to_limbs(be);
    let order = to_limbs(&ORDER);
    let reduced = if less_than(&value, &order) {
        value
    } else {
        sub(&value, &order)
    };
    Scalar::from_be_bytes(from_limbs(&reduced)).expect("reduced below n")
}

/// Jacobi symbol (a / m) for odd m, by the binary algorithm. Returns 1, -1 or 0.
fn jacobi(a: &[u8; 32], m: &[u8; 32]) -> i8 {
    let mut a = to_limbs(a);
    let mut m = to_limbs(m);
    let mut sign = 1i8;
    while !less_than(&a, &m) {
        a = sub(&a, &m);
    }
    loop {
        if a[2] == 0 && a[3] == 0 && m[2] == 0 && m[3] == 0 {
            // Both fit in 128 bits (about half-way for random inputs): finish natively.
            let wide = |l: &Limbs| (l[1] as u128) << 64 | l[0] as u128;
            return jacobi_u128(wide(&a), wide(&m), sign);
        }
        if is_zero(&a) {
            return if m == [1, 0, 0, 0] { sign } else { 0 };
        }
        // (2/m) = -1 exactly when m = 3 or 5 (mod 8).
        let twos = a[0].trailing_zeros().min(63);
        if twos > 0 {
            a = shr(&a, twos);
            if twos % 2 == 1 && matches!(m[0] & 7, 3 | 5) {
                sign = -sign;
            }
            continue;
        }
        if less_than(&a, &m) {
            // Quadratic reciprocity: flip when both are 3 mod 4.
            std::mem::swap(&mut a, &mut m);
            if a[0] & 3 == 3 && m[0] & 3 == 3 {
                sign = -sign;
            }
        }
        a = sub(&a, &m);
    }
}

/// The same binary algorithm on native 128-bit integers, continuing with `sign`.
fn jacobi_u128(mut a: u128, mut m: u128, mut sign: i8) -> i8 {
    loop {
        if a == 0 {
            return if m == 1 { sign } else { 0 };
        }
        let twos = a.trailing_zeros();
        a >>= twos;
        if twos % 2 == 1 && matches!(m & 7, 3 | 5) {
            sign = -sign;
        }
        if a < m {
            std::mem::swap(&mut a, &mut m);
            if a & 3 == 3 && m & 3 == 3 {
                sign = -sign;
            }
        }
        a -= m;
    }
}

/// True iff `y` (a field element, big-endian, below p) is a non-zero quadratic residue mod p.
pub fn is_quadratic_residue(y: &[u8; 32]) -> bool {
    jacobi(y, &FIELD_PRIME) == 1
}

/// The Lotus/BCH nonce rule: does the point's y coordinate have a square root mod p?
pub fn has_square_y(point: &PublicKey) -> bool {
    let uncompressed = point.serialize_uncompressed();
    let y: [u8; 32] = uncompressed[33..65].try_into().expect("65-byte encoding");
    is_quadratic_residue(&y)
}

/// s·G for a public scalar, `None` when s = 0 (the point at infinity).
pub fn mul_generator(s: &Scalar) -> Option<PublicKey> {
    secp256k1::SecretKey::from_secret_bytes(s.to_be_bytes())
        .ok()
        .map(|k| PublicKey::from_secret_key(&k))
}

/// a·P + g·G for public scalars and a public point, with ONE multi-scalar multiplication.
///
/// libsecp256k1 exposes no a·P + g·G, and composing `mul_tweak` + `add_exp_tweak` costs two
/// multiplications. ECDSA public-key recovery, however, computes Q = r⁻¹·(s·R − z·G) in a single
/// Strauss multiplication, where R is the point with x = r (+n if recid bit 1) and y parity
/// recid bit 0. Choosing R = P, r = x(P) mod n, s = r·a and z = −r·g gives Q = a·P + g·G.
/// Everything here is public (verification only); `None` is the point at infinity.
pub fn mul_add_generator(point: &PublicKey, a: &Scalar, g: &Scalar) -> Option<PublicKey> {
    if *a == Scalar::ZERO {
        return mul_generator(g);
    }
    let encoded = point.serialize();
    let x: [u8; 32] = encoded[1..33].try_into().expect("33-byte encoding");
    let x_overflows_order = !is_below_order(&x);
    let r = reduce_to_scalar(&x);
    if r == Scalar::ZERO {
        // Only x = n itself; not worth a special recovery, use the two-step form.
        let a_p = point.mul_tweak(a).ok()?;
        return if *g == Scalar::ZERO {
            Some(a_p)
        } else {
            a_p.add_exp_tweak(g).ok()
        };
    }
    let s = scalar_mul(&r, a);
    let z = scalar_negate(&scalar_mul(&r, g));
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&r.to_be_bytes());
    compact[32..].copy_from_slice(&s.to_be_bytes());
    let odd_y = encoded[0] == 0x03;
    let recovery_id =
        RecoveryId::from_u8_masked(u8::from(odd_y) | (u8::from(x_overflows_order) << 1));
    let signature = RecoverableSignature::from_compact(&compact, recovery_id).ok()?;
    // Err here means Q is the point at infinity.
    signature
        .recover(Message::from_digest(z.to_be_bytes()))
        .ok()
}

/// a + b mod n for public scalars (libsecp256k1 refuses zero keys, hence the special cases).
pub fn scalar_add(a: &Scalar, b: &Scalar) -> Scalar {
    match secp256k1::SecretKey::from_secret_bytes(a.to_be_bytes()) {
        // add_tweak fails only when the sum is zero.
        Ok(a) => a.add_tweak(b).map_or(Scalar::ZERO, Scalar::from),
        Err(_) => *b,
    }
}

/// a · b mod n for public scalars.
pub fn scalar_mul(a: &Scalar, b: &Scalar) -> Scalar {
    match secp256k1::SecretKey::from_secret_bytes(a.to_be_bytes()) {
        // mul_tweak fails only for b = 0; n is prime, so a non-zero product stays non-zero.
        Ok(a) => a.mul_tweak(b).map_or(Scalar::ZERO, Scalar::from),
        Err(_) => Scalar::ZERO,
    }
}

/// −a mod n for a public scalar.
pub fn scalar_negate(a: &Scalar) -> Scalar {
    secp256k1::SecretKey::from_secret_bytes(a.to_be_bytes())
        .map_or(Scalar::ZERO, |a| Scalar::from(a.negate()))
}

/// The x coordinate of a point, big-endian.
pub fn x_coordinate(point: &PublicKey) -> [u8; 32] {
    point.serialize()[1..33]
        .try_into()
        .expect("33-byte encoding")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: u64) -> [u8; 32] {
        let mut be = [0u8; 32];
        be[24..].copy_from_slice(&v.to_be_bytes());
        be
    }

    #[test]
    fn jacobi_agrees_with_euler_on_small_primes() {
        for &p in &[3u64, 5, 7, 11, 13, 101, 1009, 65537] {
            for a in 0..p.min(300) {
                let euler = (0..p).any(|x| x * x % p == a % p);
                let expected = if a % p == 0 {
                    0
                } else if euler {
                    1
                } else {
                    -1
                };
                assert_eq!(jacobi(&num(a), &num(p)), expected, "a={a} p={p}");
            }
        }
    }

    #[test]
    fn quadratic_residues_mod_field_prime() {
        // 4 is a square; -1 is not since p = 3 mod 4; 7 is not (no point has x = 0).
        assert!(is_quadratic_residue(&num(4)));
        let minus_one = from_limbs(&sub(&to_limbs(&FIELD_PRIME), &[1, 0, 0, 0]));
        assert!(!is_quadratic_residue(&minus_one));
        assert!(!is_quadratic_residue(&num(7)));
    }

    #[test]
    fn exactly_one_of_a_point_and_its_negation_has_square_y() {
        let g =
            PublicKey::from_secret_key(&secp256k1::SecretKey::from_secret_bytes(num(1)).unwrap());
        for k in 1..50u64 {
            let p = g
                .mul_tweak(&Scalar::from_be_bytes(num(k)).unwrap())
                .unwrap();
            assert_ne!(has_square_y(&p), has_square_y(&p.negate()), "k={k}");
        }
    }

    #[test]
    fn one_multiplication_form_matches_the_two_step_form() {
        let s = |v: &[u8]| reduce_to_scalar(&crate::hash::sha256(v));
        let g = mul_generator(&Scalar::ONE).unwrap();
        for i in 0u8..40 {
            let point = mul_generator(&s(&[i, 0])).unwrap();
            let (a, b) = (s(&[i, 1]), s(&[i, 2]));
            let expected = point.mul_tweak(&a).unwrap().add_exp_tweak(&b).unwrap();
            assert_eq!(mul_add_generator(&point, &a, &b), Some(expected), "i={i}");
            assert_eq!(
                mul_add_generator(&point, &a, &Scalar::ZERO),
                Some(point.mul_tweak(&a).unwrap())
            );
            assert_eq!(
                mul_add_generator(&point, &Scalar::ZERO, &b),
                mul_generator(&b)
            );
        }
        // a·P + g·G = infinity is reported as None: P = G, a = 1, g = −1.
        assert_eq!(
            mul_add_generator(&g, &Scalar::ONE, &scalar_negate(&Scalar::ONE)),
            None
        );
        // A point whose x exceeds n needs recovery id bit 1: x = n + 1 is not on the curve,
        // so search a few x >= n values for one that is.
        let mut found = 0;
        for delta in 0u8..=255 {
            let mut x = ORDER;
            x[31] = x[31].wrapping_add(delta);
            if delta > 0xbe {
                break;
            }
            for prefix in [2u8, 3] {
                let mut bytes = [prefix; 33];
                bytes[1..].copy_from_slice(&x);
                if let Ok(point) = PublicKey::from_slice(&bytes) {
                    let (a, b) = (s(&[delta, 3]), s(&[delta, 4]));
                    let expected = point.mul_tweak(&a).unwrap().add_exp_tweak(&b).unwrap();
                    assert_eq!(mul_add_generator(&point, &a, &b), Some(expected));
                    found += 1;
                }
            }
        }
        assert!(
            found > 0,
            "no point with x >= n found to exercise the overflow bit"
        );
    }

    #[test]
    fn public_scalar_arithmetic() {
        let s = |v: u64| Scalar::from_be_bytes(num(v)).unwrap();
        assert_eq!(scalar_add(&s(2), &s(3)), s(5));
        assert_eq!(scalar_add(&Scalar::ZERO, &s(3)), s(3));
        assert_eq!(scalar_add(&s(3), &scalar_negate(&s(3))), Scalar::ZERO);
        assert_eq!(scalar_mul(&s(6), &s(7)), s(42));
        assert_eq!(scalar_mul(&Scalar::ZERO, &s(7)), Scalar::ZERO);
        assert_eq!(scalar_mul(&s(7), &Scalar::ZERO), Scalar::ZERO);
        assert_eq!(scalar_negate(&Scalar::ZERO), Scalar::ZERO);
        let minus_one = scalar_negate(&Scalar::ONE);
        assert_eq!(scalar_mul(&minus_one, &minus_one), Scalar::ONE);
    }

    #[test]
    fn reduction_mod_order() {
        assert_eq!(reduce_to_scalar(&ORDER), Scalar::ZERO);
        assert_eq!(reduce_to_scalar(&[0xff; 32]).to_be_bytes()[..15], [0u8; 15]);
        assert_eq!(reduce_to_scalar(&num(5)).to_be_bytes(), num(5));
        assert!(!is_below_order(&ORDER));
        assert!(is_below_field_prime(&ORDER));
        assert!(!is_below_field_prime(&FIELD_PRIME));
    }
}
