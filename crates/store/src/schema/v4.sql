-- v4: when this profile last saved a group's backup (its descriptor as a file). A group can be
-- rebuilt only from every member's key and this member list, so the app asks until it exists.
CREATE TABLE group_backups (
    group_id BLOB PRIMARY KEY REFERENCES groups (group_id),
    saved_ms INTEGER NOT NULL
) STRICT;
