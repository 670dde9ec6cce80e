-- v3, one database per profile: the app's own tables join the session store (issue "One
-- engine"). What lived in cosigner.sqlite3 (the profile's signer key record, seconds) and in
-- groups/*.group files moves here, in milliseconds; the engine imports old profiles once.

-- Which signer key this profile belongs to (never the secret): a key that disappears from the
-- keychain, or is swapped, is noticed instead of silently replaced.
CREATE TABLE profile_signer (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    public_key BLOB NOT NULL CHECK (length(public_key) = 33),
    created_ms INTEGER NOT NULL,
    backup_confirmed_ms INTEGER
) STRICT;

-- Groups this signer belongs to: the canonical descriptor, verified by the engine on load.
CREATE TABLE groups (
    group_id BLOB PRIMARY KEY CHECK (length(group_id) = 32),
    name TEXT NOT NULL,
    descriptor BLOB NOT NULL,
    added_ms INTEGER NOT NULL
) STRICT;

-- Members' signed acceptances of a group (one per member).
CREATE TABLE group_acceptances (
    group_id BLOB NOT NULL REFERENCES groups (group_id),
    member BLOB NOT NULL CHECK (length(member) = 33),
    acceptance BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (group_id, member)
) STRICT;

-- Every output paying a group's script that a chain backend ever reported. A coin that
-- leaves the backend's unspent set is marked spent, never deleted: the group's history.
CREATE TABLE group_coins (
    group_id BLOB NOT NULL REFERENCES groups (group_id),
    txid BLOB NOT NULL CHECK (length(txid) = 32),
    vout INTEGER NOT NULL,
    value INTEGER NOT NULL CHECK (value >= 0),
    script BLOB NOT NULL,
    -- NULL while only in a mempool.
    height INTEGER,
    first_seen_ms INTEGER NOT NULL,
    spent_seen_ms INTEGER,
    -- The backend that reported it last.
    backend TEXT NOT NULL,
    PRIMARY KEY (group_id, txid, vout)
) STRICT;
