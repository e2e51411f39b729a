-- Failed logins, counted per typed name and client address (`client_addr`
-- is the address, or '*' for all addresses together). The name is kept only
-- as its SHA-256, so names that are no account (often mistyped passwords)
-- are never stored, yet they are counted exactly like real accounts.
create table login_failures (
    name_hash text not null,
    client_addr text not null,
    failures bigint not null,
    last_failed_at bigint not null,
    locked_until bigint,
    primary key (name_hash, client_addr)
);
create index login_failures_last on login_failures(last_failed_at);
