"""The audit trail: one append-only ``AuditEvent`` per change to study data, role, login or export.

Every caller goes through ``services.event_record``; the ``middleware`` gives each request an id
and makes the request reachable from services, so they record who, from where and in which
request without taking ``request`` as an argument. Actors and objects are stored as values
(ids, usernames or rater pseudonyms), never foreign keys: deleting or erasing a user never
rewrites an event. On PostgreSQL a trigger refuses UPDATE and DELETE on the table.
"""
