-- The audit chain is keyed (HMAC-SM3, the key id on each entry; entries
-- without one are the plain SM3 entries of earlier versions), pruning
-- checkpoints carry a MAC, and the database itself refuses to change or
-- remove entries except inside `fengqiao audit prune`, which holds a
-- one-row permit for the length of its transaction.
alter table audit_log add column key_id text;
alter table audit_checkpoints add column key_id text;
alter table audit_checkpoints add column mac text;

create table audit_prune_permit (
    id integer primary key check (id = 1),
    through_id bigint not null
);

create function audit_log_guard() returns trigger language plpgsql as $$
begin
    if tg_op = 'DELETE' and exists (select 1 from audit_prune_permit where through_id >= old.id) then
        return old;
    end if;
    raise exception 'audit_log entries are changed by no one and removed only by fengqiao audit prune';
end
$$;

create trigger audit_log_guard before update or delete on audit_log
    for each row execute function audit_log_guard();

create function audit_append_only() returns trigger language plpgsql as $$
begin
    raise exception '% is append-only', tg_table_name;
end
$$;

create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_append_only();
create trigger audit_checkpoints_append_only before update or delete on audit_checkpoints
    for each row execute function audit_append_only();
create trigger audit_checkpoints_no_truncate before truncate on audit_checkpoints
    for each statement execute function audit_append_only();
