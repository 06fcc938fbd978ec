"""ejournal_bridge's RPC contract: payloads and results of its entrypoints (EJ-*), as marshmallow schemas.
The service validates with them and the gateway documents and validates its requests with the same ones.
A body the service loads is a ``CommandSchema``: the service builds its typed command (a frozen dataclass named
as a verb, the body's fields plus the ids of the request's path) and the application method takes that."""

from dataclasses import dataclass, field

from marshmallow import Schema, fields, validate

from shared.contracts.api.commands import CommandSchema


@dataclass(frozen=True)
class RegisterProvider:
    """EJ-1: an operator registers a region's e-journal (its OneRoster API and OAuth client)."""

    region: str
    name: str
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)  # sealed before it is stored; never in a log line


class ProviderInput(CommandSchema):
    command = RegisterProvider
    region = fields.String(required=True, validate=validate.Length(max=10),  # which codes: the bridge, as school
                           metadata={"description": "A federal subject's code, e.g. 16 "
                                                    "(shared/regions.py; region.unknown otherwise)"})
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    base_url = fields.Url(required=True, require_tld=False, schemes={"http", "https"})
    client_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    client_secret = fields.String(required=True, validate=validate.Length(min=1, max=500), load_only=True)


class ProviderView(Schema):
    provider_id = fields.UUID(required=True)
    region = fields.String(required=True)
    name = fields.String(required=True)


class ReplayView(Schema):
    replay_id = fields.UUID(required=True)
    state = fields.String(metadata={"description": "running or finished"})
    deliveries = fields.Integer()
    chats_sent = fields.Integer()



class ProviderDetail(ProviderView):
    base_url = fields.String(required=True)
    client_id = fields.String(required=True)
    webhook_url = fields.String(metadata={"description": "Where the e-journal sends its webhooks"})
    orgs = fields.Dict(keys=fields.String(), values=fields.String(),
                       metadata={"description": "Schools the journal sent: sourcedId -> name"})
    schools = fields.Dict(keys=fields.String(), values=fields.String(),
                          metadata={"description": "Schools bound: sourcedId -> platform organization id"})
    last_replay = fields.Nested(ReplayView, allow_none=True)
    bindings = fields.List(fields.Nested(lambda: BindingView()),
                           metadata={"description": "Schools bound, each with its resync's progress"})


class ProviderCreated(ProviderDetail):
    webhook_secret = fields.String(required=True, metadata={"description": "Shown once: give it to the e-journal"})


class RotationInput(Schema):
    grace_seconds = fields.Integer(load_default=86400, validate=validate.Range(min=0, max=30 * 86400),
                                   metadata={"description": "How long the old secret keeps working"})


class SecretView(Schema):
    webhook_secret = fields.String(required=True, metadata={"description": "Shown once"})
    previous_valid_until = fields.String(required=True)


class SchoolBinding(Schema):
    organization_id = fields.UUID(required=True)


class ResyncView(Schema):
    resync_id = fields.UUID(required=True)
    state = fields.String(required=True, validate=validate.OneOf(("pending", "running", "done", "failed")),
                          metadata={"description": "pending, running, done or failed (then error says why)"})
    people_total = fields.Integer(required=True, metadata={"description": "Linked people whose schools are told"})
    people_done = fields.Integer(required=True)
    classes_total = fields.Integer(required=True, metadata={"description": "Classes whose chats are brought in line"})
    classes_done = fields.Integer(required=True)
    chats_sent = fields.Integer(required=True)
    error = fields.String(allow_none=True)
    requested_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)


class BindingView(Schema):
    provider_id = fields.UUID(required=True)
    external_org_id = fields.String(required=True)
    organization_id = fields.UUID(required=True)
    resync = fields.Nested(ResyncView, required=True,
                           metadata={"description": "The resync the bind started (in the background)"})


class DeliveryAccepted(Schema):
    delivery_id = fields.UUID(required=True)
    duplicate = fields.Boolean(required=True, metadata={"description": "Seen before: nothing changed"})


class LinkStart(Schema):
    provider_id = fields.UUID(required=True)
    login_hint = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100),
                               metadata={"description": "The journal person, when the journal started the link"})


class LinkStarted(Schema):
    authorize_url = fields.String(required=True, metadata={"description": "Send the person here to sign in"})
    expires_at = fields.String(required=True)


class LinkView(Schema):
    provider_id = fields.UUID(required=True)
    region = fields.String(required=True)
    external_person_id = fields.String(required=True)
    role = fields.String(required=True)
    linked_at = fields.String(required=True)


class LessonCall(Schema):
    call_id = fields.UUID(required=True)
    title = fields.String(allow_none=True)
    started_at = fields.String(allow_none=True)
    started_by = fields.UUID(required=True)
    may_join = fields.Boolean(required=True)


class MyLesson(Schema):
    """A lesson of one's timetable (EJ-5, SC-13); ``lesson_id`` is what ``/lessons/{id}/call`` takes."""

    lesson_id = fields.UUID(required=True)
    provider_id = fields.UUID(required=True)
    external_lesson_id = fields.String(required=True)
    class_id = fields.UUID(required=True)
    class_title = fields.String(allow_none=True)
    subject = fields.String(required=True)
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    remote = fields.Boolean(required=True)
    published = fields.Boolean(required=True, metadata={"description": "A remote lesson the teacher published"})
    state = fields.String(required=True, metadata={"description": "scheduled, started or ended (in the journal)"})
    teaching = fields.Boolean(required=True, metadata={"description": "One teaches this lesson"})
    call = fields.Nested(LessonCall, allow_none=True, metadata={"description": "Its call under way, if any"})
    actions = fields.List(fields.String(), required=True,
                          metadata={"description": "join (its call is under way) and/or start (one's remote lesson)"})
