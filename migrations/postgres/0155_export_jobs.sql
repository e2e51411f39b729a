-- Large queue exports (issue 18): a queue of more than 5,000 orders is
-- exported by a background job that shows its progress; the workbook waits
-- here for its owner for a day. The job runs as the session that asked for
-- it (its scope and masking), so ending that session ends the export.
create table export_jobs (
    id bigserial primary key,
    user_id bigint not null references users(id),
    token_hash text not null,
    client_addr text,
    query text not null,
    state text not null default 'queued',
    rows_total bigint not null default 0,
    rows_done bigint not null default 0,
    error text,
    file bytea,
    created_at bigint not null,
    finished_at bigint
);
create index export_jobs_state on export_jobs(state, id);
create index export_jobs_user on export_jobs(user_id, id);
