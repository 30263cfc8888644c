-- 0008: pause requests (the same change in both dialects).
--
-- runs.pause_request holds a pause asked from outside (baton runs pause)
-- that the run's engine has not made yet: a JSON object with who asked,
-- why and when (store.PauseRequest), or NULL. The engine clears it in the
-- transaction that records the pause wait it makes for it (WaitBegin with
-- ConsumePause), so a resume does not pause the run again.
ALTER TABLE runs ADD COLUMN pause_request TEXT;
