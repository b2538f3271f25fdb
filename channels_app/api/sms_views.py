"""PLACEHOLDER (helper sms-outbound fills this): the segment count and encoding of a draft SMS."""

from rest_framework.views import APIView


class ChannelSmsSegmentsApi(APIView):
    pass
