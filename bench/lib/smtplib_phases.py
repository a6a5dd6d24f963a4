#!/usr/bin/env python3
"""An independent SMTP client for timing comparisons: Python's smtplib and ssl, timing the same
phases the probe reports (connect, banner, ehlo = both EHLOs, starttls = STARTTLS command and
handshake, mail, rcpt, quit = RSET and QUIT), on time.perf_counter.

Usage: smtplib_phases.py IP PORT SERVERNAME CAFILE HELO FROM TO
Reads one line per session from stdin; for each runs a session (STARTTLS, MAIL, RCPT, RSET,
QUIT: delivers nothing) and prints its phases in ms as one JSON line, or {"error": ...}.
The TLS context is built once, before any session (as the probe does). Plain smtplib: Nagle
stays on, as in any program that uses it."""
import json
import smtplib
import socket
import ssl
import sys
import time

ip, port, servername, cafile, helo, mail_from, rcpt_to = sys.argv[1], int(sys.argv[2]), *sys.argv[3:8]
ctx = ssl.create_default_context(cafile=cafile)
t = time.perf_counter


def check(reply):
    code, text = reply
    if code >= 400:
        raise RuntimeError(f'{code} {text!r}')


def session():
    ph = {}
    s = smtplib.SMTP()
    a = t()
    s.sock = socket.create_connection((ip, port), 10)
    ph['connect'] = t() - a
    a = t()
    check(s.getreply())
    ph['banner'] = t() - a
    a = t()
    s.ehlo(helo)
    ph['ehlo'] = t() - a
    a = t()
    check(s.docmd('STARTTLS'))
    s.sock = ctx.wrap_socket(s.sock, server_hostname=servername)
    s.file = None
    ph['starttls'] = t() - a
    a = t()
    s.ehlo_resp = None
    s.ehlo(helo)
    ph['ehlo'] += t() - a
    a = t()
    check(s.mail(mail_from))
    ph['mail'] = t() - a
    a = t()
    check(s.rcpt(rcpt_to))
    ph['rcpt'] = t() - a
    version = s.sock.version()
    a = t()
    s.rset()
    s.quit()
    ph['quit'] = t() - a
    ph['tls'] = version
    return ph


for line in sys.stdin:
    if not line.strip():
        break
    try:
        ph = session()
    except Exception as e:  # reported to the caller, which fails with it
        print(json.dumps({'error': repr(e)}), flush=True)
        continue
    print(json.dumps({k: (v * 1000 if isinstance(v, float) else v) for k, v in ph.items()}), flush=True)
