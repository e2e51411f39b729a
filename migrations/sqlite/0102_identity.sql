-- Editable roles and permissions, lockout, security policy, API tokens.

-- Roles are sets of permissions (codes from auth::perm). Built-in roles get
-- their default sets here; administrators may change them and add roles.
alter table roles add column description text not null default '';
alter table roles add column updated_at bigint not null default 0;
create table role_permissions (
    role_code text not null references roles(code) on delete cascade,
    permission text not null,
    primary key (role_code, permission)
);
insert into role_permissions (role_code, permission) values
    ('admin','tree.read'), ('admin','tree.write'), ('admin','member.unmask'), ('admin','orders.read'),
    ('admin','orders.report'), ('admin','calendar.write'), ('admin','audit.read'), ('admin','users.manage'),
    ('admin','roles.manage'), ('admin','tokens.manage'), ('admin','policy.manage'),
    ('leader','tree.read'), ('leader','orders.read'), ('leader','orders.supervise'),
    ('acceptor','tree.read'), ('acceptor','orders.read'), ('acceptor','orders.report'), ('acceptor','orders.accept'),
    ('acceptor','orders.verify'),
    ('dispatcher','tree.read'), ('dispatcher','orders.read'), ('dispatcher','orders.report'),
    ('dispatcher','orders.dispatch'),
    ('shift_lead','tree.read'), ('shift_lead','orders.read'), ('shift_lead','orders.report'),
    ('shift_lead','orders.dispatch'), ('shift_lead','orders.verify'), ('shift_lead','orders.supervise'),
    ('dept_handler','orders.read'), ('dept_handler','orders.handle'),
    ('grid_leader','tree.read'), ('grid_leader','orders.read'), ('grid_leader','orders.report'),
    ('grid_leader','orders.dispatch'), ('grid_leader','orders.verify'),
    ('grid_worker','tree.read'), ('grid_worker','orders.read'), ('grid_worker','orders.report'),
    ('grid_worker','orders.handle'),
    ('police','tree.read'), ('police','orders.read'), ('police','orders.report'), ('police','orders.handle'),
    ('aux_police','tree.read'), ('aux_police','orders.read'), ('aux_police','orders.report'),
    ('volunteer','orders.report'),
    ('resident','orders.report');

-- Account lockout and forced password change.
alter table users add column failed_logins bigint not null default 0;
alter table users add column locked_until bigint;
alter table users add column password_changed_at bigint;

-- Settings edited by administrators (the security policy), as JSON text.
create table settings (
    key text primary key,
    value text not null,
    updated_at bigint not null
);

-- API tokens for integrations: scoped to permissions and a node, expiring,
-- revocable; only the SHA-256 of the token is kept.
create table api_tokens (
    id integer primary key,
    name text not null,
    token_hash text not null unique,
    prefix text not null,
    node_id bigint not null references nodes(id),
    permissions text not null,
    created_by bigint not null references users(id),
    created_at bigint not null,
    expires_at bigint not null,
    revoked_at bigint,
    last_used_at bigint
);
