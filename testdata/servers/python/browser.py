"""Plays a person's browser for an OAuth login: opens the authorization URL, fills and submits
each page's form (the authorization server's login and consent pages), follows every redirect
with its cookies, and stops once it has been sent to the client's loopback redirect.

Usage: browser.py URL [LOGIN]   (LOGIN: the name typed in the login form; "user" by default)
Exits 0 when the loopback redirect was reached, 1 otherwise (printing the page it stopped on).
"""
import html
import http.cookiejar
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from urllib.parse import urljoin, urlparse


class _Stop(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but not the one to the client's loopback redirect when asked to stop
    there (nobody may listen there): that one is returned as the page reached."""

    stop = False

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if self.stop and urlparse(newurl).path == "/callback":
            raise _Reached(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Reached(Exception):
    def __init__(self, url):
        self.url = url


_redirects = _Stop()
browser = urllib.request.build_opener(
    urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _redirects
)


def fetch(target, fields=None):
    data = urllib.parse.urlencode(fields).encode() if fields is not None else None
    try:
        with browser.open(target, data=data, timeout=20) as answer:
            return answer.geturl(), answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as refused:
        return refused.geturl(), refused.code, refused.read().decode("utf-8", "replace")
    except _Reached as reached:
        return reached.url, 302, ""


def login(url, name, stop_at_redirect=False):
    """Logs in as `name` from `url`; the loopback redirect URL reached, or exits 1."""
    _redirects.stop = stop_at_redirect
    where, status, text = fetch(url)
    for _ in range(8):
        if urlparse(where).path == "/callback":
            return where, status, text
        form = re.search(r"<form([^>]*)>(.*?)</form>", text, re.S)
        if not form:
            print("no form on", where, status, re.sub(r"<style>.*?</style>", "", text, flags=re.S)[:3000])
            sys.exit(1)
        action = re.search(r'action="([^"]*)"', form.group(1))
        target = urljoin(where, html.unescape(action.group(1)) if action else "")
        fields = {}
        for tag in re.findall(r"<input[^>]*>", form.group(2)):
            field = re.search(r'name="([^"]*)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if field:
                fields[field.group(1)] = html.unescape(value.group(1)) if value else ""
        if "login" in fields:
            fields["login"] = name
        if "password" in fields:
            fields["password"] = "any"
        where, status, text = fetch(target, fields)
    print("too many pages; stopped on", where)
    sys.exit(1)


if __name__ == "__main__":
    url = sys.argv[1]
    name = sys.argv[2] if len(sys.argv) > 2 else "user"
    _, status, text = login(url, name)
    print("redirected to the client:", status, text)
