"""The REST server's access log: one line per request, whatever the client put in its request line."""

import logging

from serving.server import rest_api


def test_control_characters_in_a_request_line_cannot_forge_access_log_lines(caplog):
    handler = rest_api._Handler.__new__(rest_api._Handler)  # no socket: only the log line is made here
    handler.client_address = ("127.0.0.1", 5000)
    forged = 'GET /v1/models/x\r\n127.0.0.1 "GET /admin HTTP/1.1" 200 -\x1b[2J'
    with caplog.at_level(logging.INFO, logger="serving.access"):
        handler.log_message('"%s" %s %s', forged, "400", "-")
    [record] = caplog.records
    line = record.getMessage()
    assert "\r" not in line and "\n" not in line and "\x1b" not in line
    assert line.startswith("127.0.0.1 ") and "\\x0d\\x0a" in line and "\\x1b" in line
