"""Plays a person's browser for an OAuth login: opens the authorization URL, fills and submits
each page's form (the authorization server's login and consent pages), follows every redirect
with its cookies, and stops once it has been sent to the client's loopback redirect.

Usage: browser.py URL [LOGIN]   (LOGIN: the name typed in the login form; "user" by default)
Exits 0 when the loopback redirect was reached, 1 otherwise (printing the page it stopped on).
"""
import html
import re
import sys
from urllib.parse import urljoin, urlparse

import httpx

url = sys.argv[1]
login = sys.argv[2] if len(sys.argv) > 2 else "user"

with httpx.Client(follow_redirects=True, timeout=20) as browser:
    page = browser.get(url)
    for _ in range(8):
        if urlparse(str(page.url)).path == "/callback":
            print("redirected to the client:", page.status_code, page.text)
            sys.exit(0)
        form = re.search(r"<form([^>]*)>(.*?)</form>", page.text, re.S)
        if not form:
            print("no form on", page.url, page.status_code, page.text[:2000])
            sys.exit(1)
        action = re.search(r'action="([^"]*)"', form.group(1))
        target = urljoin(str(page.url), html.unescape(action.group(1)) if action else "")
        fields = {}
        for tag in re.findall(r"<input[^>]*>", form.group(2)):
            name = re.search(r'name="([^"]*)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if name:
                fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
        if "login" in fields:
            fields["login"] = login
        if "password" in fields:
            fields["password"] = "any"
        page = browser.post(target, data=fields)
    print("too many pages; stopped on", page.url)
    sys.exit(1)
