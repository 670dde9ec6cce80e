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
