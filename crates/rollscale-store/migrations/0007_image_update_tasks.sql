-- Image update tasks (template ACS-ESS-CreateImageAndUpdateScalingConfiguration) are rows of
-- `executions` like the rolling updates: a scheduled task is a parent (parent_id = '') whose
-- body holds its trigger and next firing, each firing a child; a task that runs now is one
-- row. They belong to no one group (group_id = ''; their configurations may be of several).
-- The scheduler looks up the unfinished ones of the template at every tick.
CREATE INDEX executions_template_status ON executions (template_name, status);
