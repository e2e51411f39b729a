-- The dispatch catalogue (派单目录): for a category (a sub-category, or a
-- top-level class covering its sub-categories) in a region (the district, a
-- subdistrict or a community, covering everything below it), the default
-- lead unit (主办) and assisting units (协办) a dispatcher is offered. The
-- most specific rule wins: the deepest region, then the exact category.
-- `lead_unit_id` null means the community centre where the matter is (属地);
-- `assist_local` names the local centres that assist (community, subdistrict).
create table dispatch_rules (
    id integer primary key,
    category_code text not null references categories(code),
    node_id bigint not null references nodes(id),
    lead_unit_id bigint references units(id),
    assisting text not null default '[]',
    assist_local text not null default '[]',
    note text,
    updated_at bigint not null,
    updated_by bigint references users(id),
    unique (category_code, node_id)
);
create index dispatch_rules_node on dispatch_rules(node_id);
