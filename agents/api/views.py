"""Admins manage teams, agents and integration tokens; every agent can see who they are."""

from django.contrib.auth import get_user_model
from django.db import IntegrityError
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import AgentProfile, ApiToken, Team
from agents.selectors import user_is_admin
from agents.services import agent_create, api_token_create, team_create
from channels_app.selectors import channel_get
from helpdesk.api.fields import AsciiIntegerField
from helpdesk.api.permissions import IsAdmin
from helpdesk.errors import Conflict, DomainError


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name", "description", "created_at"]
        read_only_fields = ["id", "created_at"]


class TeamListCreateApi(APIView):
    def get_permissions(self):
        return [IsAdmin()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(responses=TeamSerializer(many=True), summary="Teams")
    def get(self, request):
        return Response(TeamSerializer(Team.objects.order_by("name"), many=True).data)

    @extend_schema(request=TeamSerializer, responses={201: TeamSerializer}, summary="Create a team (admins)")
    def post(self, request):
        data = TeamSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = team_create(**data.validated_data)
        return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)


class AgentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="user.pk")
    username = serializers.CharField(source="user.username")
    email = serializers.CharField(source="user.email")
    display_name = serializers.CharField()
    role = serializers.CharField()
    team_ids = serializers.SerializerMethodField()

    def get_team_ids(self, profile) -> list[int]:
        return sorted(team.pk for team in profile.teams.all())


class AgentCreateInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    password = serializers.CharField(write_only=True, min_length=10, max_length=128)
    display_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=AgentProfile.Role.choices, default=AgentProfile.Role.AGENT)
    team_ids = serializers.ListField(child=AsciiIntegerField(), required=False, default=list)


class AgentListCreateApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses=AgentOutputSerializer(many=True), summary="Agents (admins)")
    def get(self, request):
        profiles = AgentProfile.objects.select_related("user").prefetch_related("teams").order_by("user__username")
        return Response(AgentOutputSerializer(profiles, many=True).data)

    @extend_schema(request=AgentCreateInputSerializer, responses={201: AgentOutputSerializer}, summary="Add an agent")
    def post(self, request):
        data = AgentCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        teams = list(Team.objects.filter(pk__in=values["team_ids"]))
        if len(teams) != len(set(values["team_ids"])):
            raise DomainError("Unknown team id.", code="unknown_team")
        if get_user_model().objects.filter(username=values["username"]).exists():
            raise Conflict("That username is taken.", code="username_taken")
        try:
            user = agent_create(
                username=values["username"],
                password=values["password"],
                email=values["email"],
                display_name=values["display_name"],
                role=values["role"],
                teams=teams,
            )
        except IntegrityError as exc:
            raise Conflict("That username is taken.", code="username_taken") from exc
        return Response(AgentOutputSerializer(user.agent_profile).data, status=status.HTTP_201_CREATED)


class TokenCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiToken.Scope.choices), min_length=1)
    channel_id = AsciiIntegerField(required=False, allow_null=True)


_TOKEN_OUT = inline_serializer(
    name="IssuedToken",
    fields={
        "id": serializers.IntegerField(),
        "name": serializers.CharField(),
        "scopes": serializers.ListField(child=serializers.CharField()),
        "channel_id": serializers.IntegerField(allow_null=True),
        "token": serializers.CharField(help_text="Shown once. Store it now."),
    },
)


class IntegrationTokenCreateApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        request=TokenCreateInputSerializer, responses={201: _TOKEN_OUT}, summary="Issue an integration token"
    )
    def post(self, request):
        data = TokenCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        channel = channel_get(channel_id=values["channel_id"]) if values.get("channel_id") else None
        if ApiToken.Scope.MESSAGES_WRITE in values["scopes"] and channel is None:
            raise DomainError("A token with messages:write must name its channel (channel_id).")
        issued = api_token_create(name=values["name"], scopes=values["scopes"], channel=channel)
        token = issued.token
        body = {
            "id": token.pk,
            "name": token.name,
            "scopes": token.scopes,
            "channel_id": token.channel_id,
            "token": issued.secret,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class MeApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            name="Me",
            fields={
                "id": serializers.IntegerField(),
                "username": serializers.CharField(),
                "is_admin": serializers.BooleanField(),
                "team_ids": serializers.ListField(child=serializers.IntegerField()),
            },
        ),
        summary="The signed-in agent",
    )
    def get(self, request):
        profile = getattr(request.user, "agent_profile", None)
        team_ids = sorted(profile.teams.values_list("pk", flat=True)) if profile else []
        return Response(
            {
                "id": request.user.pk,
                "username": request.user.get_username(),
                "is_admin": user_is_admin(request.user),
                "team_ids": team_ids,
            }
        )
