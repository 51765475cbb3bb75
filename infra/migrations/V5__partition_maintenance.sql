-- Future partitions of `events` must exist before their month starts, or appends fail. The
-- scheduled partitions function keeps them created as the service role, which may run only this:
-- the function runs as its owner (SECURITY DEFINER), takes no names from its caller, and only
-- ever creates monthly partitions of `events` (it never drops or alters one), so granting it
-- gives the service role no way to change what is stored.
ALTER FUNCTION audit_ensure_event_partitions(date, integer) SECURITY DEFINER SET search_path = public;
GRANT EXECUTE ON FUNCTION audit_ensure_event_partitions(date, integer) TO audit_service;
