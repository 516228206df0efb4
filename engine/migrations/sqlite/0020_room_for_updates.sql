-- Hearth engine schema v20: on PostgreSQL, `sensors` and `agents` leave room on their pages
-- for the updates that rewrite their rows all the time
-- (engine/migrations/postgres/0020_room_for_updates.sql). SQLite has no such setting: nothing
-- changes here, and the version stays the same on both backends.
SELECT 1;
