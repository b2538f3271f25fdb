"""What a draft SMS costs: its encoding and segment count, for the reply box of an SMS conversation."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_app.models import Channel
from channels_app.selectors import channel_get
from channels_app.sms.segments import sms_segments
from helpdesk.api.permissions import IsAgent
from helpdesk.api.schema import ErrorSerializer
from helpdesk.errors import NotFound

# As long as the API lets a message text be (MAX_MESSAGE_TEXT_CHARS is far above any SMS).
MAX_DRAFT_CHARS = 10_000


class ChannelSmsSegmentsApi(APIView):
    """Count the SMS segments a text would take on this SMS channel (GSM-7: 160 in one, 153 per segment when
    split; UCS-2, forced by any character outside GSM-7: 70 and 67). ``non_gsm_characters`` lists what forced
    UCS-2, so the agent can replace it (a curly quote, an emoji) and halve the cost."""

    permission_classes = [IsAgent]

    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=MAX_DRAFT_CHARS)

    class OutputSerializer(serializers.Serializer):
        encoding = serializers.ChoiceField(choices=["GSM-7", "UCS-2"])
        segments = serializers.IntegerField(help_text="Messages the carrier bills; 0 for an empty text.")
        units = serializers.IntegerField(help_text="GSM-7 septets or UTF-16 code units the text takes.")
        per_segment = serializers.IntegerField(help_text="Units that fit in each segment (160/153 or 70/67).")
        non_gsm_characters = serializers.ListField(
            child=serializers.CharField(trim_whitespace=False), help_text="The characters that forced UCS-2."
        )

    @extend_schema(
        operation_id="channels_sms_segments",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such channel, or not an SMS channel."),
        },
        summary="Count the SMS segments of a draft (agents)",
    )
    def post(self, request, channel_id: int):
        channel = channel_get(channel_id=channel_id)
        if channel.kind != Channel.Kind.SMS:
            raise NotFound("No such SMS channel.")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = sms_segments(data.validated_data["text"])
        return Response(self.OutputSerializer(result).data)
