-- Table names that try to escape the output directory, run commands, or collide.
CREATE TABLE "../../escape" (id int PRIMARY KEY);
CREATE TABLE "a/b" (id int);
CREATE TABLE ".git" (id int);
CREATE TABLE "CON" (id int);
CREATE TABLE "-rf" (id int);
CREATE TABLE "$(touch x)" (id int);
CREATE TABLE "Users" (id int PRIMARY KEY);
CREATE TABLE users (id int PRIMARY KEY, boss int REFERENCES "Users"(id));
CREATE TABLE "new
line; DROP TABLE users; --" (id int);
CREATE TABLE "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" (id int);
CREATE TABLE "ünïcødé_表" (id int);
CREATE TABLE "quote""d" (id int);
COMMENT ON TABLE "new
line; DROP TABLE users; --" IS 'comment
with DROP TABLE users; newline';
