-- Assessment (考核): who sets its weights and grades. The scheme itself is
-- a setting (`settings`, key stats.assessment); until one is saved the
-- default scheme applies.
insert into role_permissions (role_code, permission) values ('admin','stats.configure');
