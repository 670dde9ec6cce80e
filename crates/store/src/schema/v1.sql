-- Lotus Cosigner store, schema version 1. Times are milliseconds on the engine's clock;
-- ids and hashes are raw 32-byte blobs, signer keys 33-byte compressed points.

-- Used-nonce registry (DESIGN §4). An attempt row exists once this node released a nonce in
-- it (or closed it); its state only moves forward: released -> signing -> signed | aborted.
CREATE TABLE attempts (
    session_id BLOB NOT NULL CHECK (length(session_id) = 32),
    attempt INTEGER NOT NULL CHECK (attempt >= 0),
    state TEXT NOT NULL CHECK (state IN ('released', 'signing', 'signed', 'aborted')),
    opened_ms INTEGER NOT NULL,
    signing_ms INTEGER,
    closed_ms INTEGER,
    PRIMARY KEY (session_id, attempt)
) STRICT, WITHOUT ROWID;

-- One row per released public nonce. The primary key makes a repeated nonce anywhere a
-- constraint error; the UNIQUE makes a second nonce for one input of one attempt one too.
CREATE TABLE nonces (
    nonce_hash BLOB PRIMARY KEY CHECK (length(nonce_hash) = 32),
    session_id BLOB NOT NULL,
    attempt INTEGER NOT NULL,
    input INTEGER NOT NULL CHECK (input BETWEEN 0 AND 65535),
    released_ms INTEGER NOT NULL,
    UNIQUE (session_id, attempt, input),
    FOREIGN KEY (session_id, attempt) REFERENCES attempts (session_id, attempt)
) STRICT, WITHOUT ROWID;

-- Every signed envelope sent or received, exact bytes, with its header fields indexed.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
    session_id BLOB NOT NULL CHECK (length(session_id) = 32),
    group_id BLOB NOT NULL CHECK (length(group_id) = 32),
    attempt INTEGER NOT NULL,
    sender INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    sent_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    bytes BLOB NOT NULL
) STRICT;
CREATE INDEX messages_by_attempt ON messages (session_id, attempt, kind, sender);
CREATE INDEX messages_by_direction ON messages (session_id, direction, attempt);
CREATE INDEX messages_by_group ON messages (group_id, received_ms);

-- One row per proposal (the first proposal envelope seen for a session id).
CREATE TABLE sessions (
    session_id BLOB PRIMARY KEY CHECK (length(session_id) = 32),
    group_id BLOB NOT NULL CHECK (length(group_id) = 32),
    proposer INTEGER NOT NULL,
    proposed_by_me INTEGER NOT NULL CHECK (proposed_by_me IN (0, 1)),
    proposal_hash BLOB NOT NULL CHECK (length(proposal_hash) = 32),
    proposal_envelope BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    approved_digest BLOB CHECK (approved_digest IS NULL OR length(approved_digest) = 32),
    approved_ms INTEGER,
    signed_tx BLOB,
    signed_ms INTEGER,
    outcome TEXT CHECK (outcome IN ('confirmed', 'rejected', 'aborted')),
    outcome_detail TEXT,
    closed_ms INTEGER,
    reputation_counted INTEGER NOT NULL DEFAULT 0 CHECK (reputation_counted IN (0, 1))
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_by_group ON sessions (group_id, created_ms);

-- Append-only hash chain: hash = SHA256(prev_hash || canonical row bytes).
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY CHECK (seq >= 1),
    time_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    session_id BLOB,
    group_id BLOB,
    signer BLOB,
    body TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
) STRICT;
CREATE INDEX audit_by_session ON audit (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX audit_by_signer ON audit (signer) WHERE signer IS NOT NULL;
-- Against our own bugs, not against someone with the file: `verify` is the real guard.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- The last entry, written with each append, so dropping entries from the end is detected.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL
) STRICT;
-- Chain heads signed with the member key.
CREATE TABLE audit_anchors (
    seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    public_key BLOB NOT NULL,
    signature BLOB NOT NULL,
    signed_ms INTEGER NOT NULL
) STRICT;

-- Blame evidence, content-addressed (id = SHA256(bytes)); audit entries refer to the id.
CREATE TABLE evidence (
    id BLOB PRIMARY KEY CHECK (length(id) = 32),
    session_id BLOB NOT NULL CHECK (length(session_id) = 32),
    attempt INTEGER NOT NULL,
    offence TEXT NOT NULL,
    culprit INTEGER NOT NULL,
    signer BLOB NOT NULL CHECK (length(signer) = 33),
    bytes BLOB NOT NULL,
    recorded_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX evidence_by_signer ON evidence (signer);

-- Reputation, per signer key (never per peer id: peer ids are cheap, keys are membership).
CREATE TABLE signers (
    signer BLOB PRIMARY KEY CHECK (length(signer) = 33),
    sessions_succeeded INTEGER NOT NULL DEFAULT 0,
    sessions_failed INTEGER NOT NULL DEFAULT 0,
    blame_count INTEGER NOT NULL DEFAULT 0,
    first_seen_ms INTEGER,
    last_seen_ms INTEGER
) STRICT, WITHOUT ROWID;
CREATE TABLE signer_timeouts (
    signer BLOB NOT NULL REFERENCES signers (signer),
    phase TEXT NOT NULL CHECK (phase IN ('commitments', 'nonces', 'signatures', 'broadcast')),
    count INTEGER NOT NULL,
    PRIMARY KEY (signer, phase)
) STRICT, WITHOUT ROWID;
CREATE TABLE signer_responses (
    signer BLOB NOT NULL REFERENCES signers (signer),
    phase TEXT NOT NULL CHECK (phase IN ('commitments', 'nonces', 'signatures')),
    responses INTEGER NOT NULL,
    total_ms INTEGER NOT NULL,
    contested INTEGER NOT NULL,
    last INTEGER NOT NULL,
    PRIMARY KEY (signer, phase)
) STRICT, WITHOUT ROWID;
CREATE TABLE signer_latency (
    signer BLOB NOT NULL REFERENCES signers (signer),
    phase TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (signer, phase, bucket)
) STRICT, WITHOUT ROWID;
-- A round's response times are counted once.
CREATE TABLE rounds_counted (
    session_id BLOB NOT NULL,
    attempt INTEGER NOT NULL,
    phase TEXT NOT NULL,
    PRIMARY KEY (session_id, attempt, phase)
) STRICT, WITHOUT ROWID;
-- Who caused trouble in a session (timeouts, blame, missed broadcast slots): the members a
-- failed session is attributed to.
CREATE TABLE session_faults (
    session_id BLOB NOT NULL,
    signer BLOB NOT NULL,
    fault TEXT NOT NULL CHECK (fault IN ('timeout', 'blame', 'broadcast')),
    PRIMARY KEY (session_id, signer, fault)
) STRICT, WITHOUT ROWID;
CREATE TABLE blacklist (
    signer BLOB PRIMARY KEY CHECK (length(signer) = 33),
    reason TEXT NOT NULL,
    since_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
-- Anomalies currently raised, so each is reported once until it clears.
CREATE TABLE anomalies (
    signer BLOB NOT NULL,
    rule TEXT NOT NULL,
    raised_ms INTEGER NOT NULL,
    PRIMARY KEY (signer, rule)
) STRICT, WITHOUT ROWID;

-- Known peers (libp2p peer ids) for reconnection and eclipse resistance.
CREATE TABLE peers (
    peer_id TEXT PRIMARY KEY,
    signer BLOB CHECK (signer IS NULL OR length(signer) = 33),
    anchor INTEGER NOT NULL DEFAULT 0 CHECK (anchor IN (0, 1)),
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX peers_by_signer ON peers (signer) WHERE signer IS NOT NULL;
CREATE TABLE peer_addresses (
    peer_id TEXT NOT NULL REFERENCES peers (peer_id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    PRIMARY KEY (peer_id, address)
) STRICT, WITHOUT ROWID;
