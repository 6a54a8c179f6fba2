-- 004: substring search without a scan. A trigram full-text index over the
-- four searchable columns (external content: the text stays in users), kept
-- in step by triggers. Searches of 3 characters or more use it; shorter
-- ones (which match too much to be selective anyway) use LIKE.
CREATE VIRTUAL TABLE users_search USING fts5(
    username, email, first_name, last_name,
    content = 'users', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO users_search (users_search) VALUES ('rebuild');

CREATE TRIGGER users_search_insert AFTER INSERT ON users
BEGIN
    INSERT INTO users_search (rowid, username, email, first_name, last_name)
    VALUES (NEW.id, NEW.username, NEW.email, NEW.first_name, NEW.last_name);
END;

CREATE TRIGGER users_search_delete AFTER DELETE ON users
BEGIN
    INSERT INTO users_search (users_search, rowid, username, email, first_name, last_name)
    VALUES ('delete', OLD.id, OLD.username, OLD.email, OLD.first_name, OLD.last_name);
END;

CREATE TRIGGER users_search_update AFTER UPDATE OF username, email, first_name, last_name ON users
BEGIN
    INSERT INTO users_search (users_search, rowid, username, email, first_name, last_name)
    VALUES ('delete', OLD.id, OLD.username, OLD.email, OLD.first_name, OLD.last_name);
    INSERT INTO users_search (rowid, username, email, first_name, last_name)
    VALUES (NEW.id, NEW.username, NEW.email, NEW.first_name, NEW.last_name);
END;
