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

create trigger audit_log_no_update before update on audit_log
begin
    select raise(abort, 'audit_log is append-only');
end;

create trigger audit_log_no_delete before delete on audit_log
when not exists (select 1 from audit_prune_permit where through_id >= old.id)
begin
    select raise(abort, 'audit_log entries are removed only by fengqiao audit prune');
end;

create trigger audit_checkpoints_no_update before update on audit_checkpoints
begin
    select raise(abort, 'audit_checkpoints is append-only');
end;

create trigger audit_checkpoints_no_delete before delete on audit_checkpoints
begin
    select raise(abort, 'audit_checkpoints is append-only');
end;
