-- v2, protocol v2: every signed message now binds its proposal's review digest, so a session
-- begun under protocol v1 can never continue (its messages are v1 envelopes). Close the open
-- ones and their unfinished attempts; the used-nonce registry, the audit chain, reputation,
-- evidence and peers are kept as they are.
UPDATE attempts
SET state = 'aborted', closed_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000
WHERE state IN ('released', 'signing');

UPDATE sessions
SET outcome = 'aborted',
    outcome_detail = '{"outcome":"aborted","cause":{"code":"protocol_upgrade"}}',
    closed_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000
WHERE outcome IS NULL;

-- From now on every session end is under a signed audit head (the engine signs one at each
-- end and at start-up); `verify` with the member key checks the sessions that ended since.
CREATE TABLE audit_policy (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    anchors_since_ms INTEGER NOT NULL
) STRICT;
INSERT INTO audit_policy (id, anchors_since_ms)
VALUES (1, CAST(strftime('%s', 'now') AS INTEGER) * 1000);

-- Co-signers' signed audit heads, as their round-1 messages carried them: two different
-- hashes for one sequence number means that member's log was rewritten.
CREATE TABLE peer_audit_heads (
    signer BLOB NOT NULL CHECK (length(signer) = 33),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    signature BLOB NOT NULL CHECK (length(signature) = 64),
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (signer, seq, hash)
) STRICT, WITHOUT ROWID;
