-- A user may hold roles at several nodes of the tree; a session acts at one
-- of them at a time (切换岗位), with the roles granted there and that
-- node's subtree as its scope. Null: the user's home node. A node that
-- goes away sends its sessions back home rather than blocking the delete.
alter table sessions add column active_node_id bigint references nodes(id) on delete set null;
