-- Sensitive personal data encrypted at rest, and the tamper-evident audit log.
-- (Numbered 0101 so it never collides with the feature migrations 0002+.)

-- Members' mobile numbers move to SM4-GCM ciphertext (`mobile_enc`, format
-- v1:<key_id>:<base64>) plus a keyed HMAC-SM3 blind index (`mobile_idx`) for
-- equality search. Encryption needs the key ring, which SQL cannot reach:
-- existing numbers wait in the nullable `mobile_plain` until the application
-- seals them at start (crypto::rotate::seal_pending) and clears the column.
alter table node_members add column mobile_plain text;
update node_members set mobile_plain = mobile;
alter table node_members drop column mobile;
alter table node_members add column mobile_enc text;
alter table node_members add column mobile_idx text;
create index node_members_mobile_idx on node_members(mobile_idx);

-- Append-only, hash-chained: `hash` is SM3 over the entry's content and
-- `prev_hash` (64 zeros for the first entry). Ids are assigned by the
-- appender as last id + 1, never by a sequence, so a gap means a removal.
create table audit_log (
    id bigint primary key,
    at bigint not null,
    actor_user_id bigint,
    actor_username text not null,
    actor_roles text not null,
    actor_node_id bigint,
    client_addr text,
    action text not null,
    object_type text,
    object_id text,
    reason text,
    detail text not null,
    prev_hash text not null,
    hash text not null
);
create index audit_log_at on audit_log(at);
create index audit_log_actor on audit_log(actor_username, id);
create index audit_log_action on audit_log(action, id);
create index audit_log_object on audit_log(object_type, object_id, id);

-- Where pruning cut the chain: verification resumes from the last pruned
-- entry's id and hash.
create table audit_checkpoints (
    id bigint primary key,
    at bigint not null,
    last_pruned_id bigint not null,
    last_pruned_hash text not null,
    pruned_count bigint not null
);
