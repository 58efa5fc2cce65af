# The source article's two helpers, get_parameter and get_secret, rewritten to work: standard library
# only (`requests` is not in the Lambda Python runtime), the token header, URL-encoded names, a timeout
# per attempt, and retries with backoff only where a retry can help.
#
# What the article's versions got wrong, and what changed:
# - no X-Aws-Parameters-Secrets-Token header: every call is refused (401 here, 400 from the original);
# - names pasted into the URL: `&`, `+`, `#`, spaces and `:` break or change the request; now quoted;
# - `requests` is not installed in Lambda: urllib.request instead;
# - retried every failure at once, even 404 and 403, which cannot succeed: now only connection errors,
#   timeouts, 429, 502, 503 and 504 are retried, with growing, jittered pauses and Retry-After honoured;
# - `response.json()` on an error body: the original extension answers errors in plain text; now a
#   non-JSON body is reported, not parsed;
# - @lru_cache kept values for the life of the process, so rotated secrets never arrived: the daemon
#   already caches with a TTL, so this module keeps nothing;
# - binary secrets were returned as None: SecretBinary now comes back as bytes.
import base64
import http.client
import json
import os
import random
import time
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT_SECONDS = 1.0
RETRIES = 2
RETRY_STATUS = {429, 502, 503, 504}

# No proxies: an HTTP(S)_PROXY in the environment must not send localhost traffic elsewhere (pscache
# also refuses forwarded requests).
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PscacheError(Exception):
    """A failed read. `status` is the HTTP status (0: no answer); `type` is pscache's `__type`."""

    def __init__(self, status, type_, message):
        super().__init__(message)
        self.status = status
        self.type = type_


class NotFound(PscacheError):
    """404: no such parameter, version, label or secret."""


class Denied(PscacheError):
    """401 (token) or 403 (AWS refused the read)."""


class Unavailable(PscacheError):
    """No answer, or 503: pscache is not running, not ready, or shutting down."""


TOKEN_VARIABLES = ('PARAMETERS_SECRETS_EXTENSION_TOKEN', 'AWS_TOKEN', 'AWS_SESSION_TOKEN',
                   'AWS_CONTAINER_AUTHORIZATION_TOKEN')


def _token():
    # The daemon's order; a file: value (any case) names the file holding the token, never the token itself.
    for name in TOKEN_VARIABLES:
        value = os.environ.get(name, '').strip()
        if not value:
            continue
        if not value.lower().startswith('file:'):
            return value
        url = urllib.parse.urlsplit(value)
        if url.netloc.lower() not in ('', 'localhost') or '?' in value or '#' in value:
            raise Denied(401, 'InvalidTokenSource',
                         f'{name}: a token file URL must be file:///path (no host, query or fragment)')
        with open(urllib.parse.unquote(url.path), encoding='utf-8') as f:
            text = f.read(4097)
        return text[:-2] if text.endswith('\r\n') else text[:-1] if text.endswith('\n') else text
    raise Denied(401, 'MissingToken',
                 'no token: set PARAMETERS_SECRETS_EXTENSION_TOKEN (inside Lambda, AWS_SESSION_TOKEN is used)')


def _pause(attempt, retry_after=None):
    backoff = 0.1 * 2 ** attempt
    backoff = backoff / 2 + random.random() * backoff / 2
    if retry_after and retry_after.strip().isdigit():
        backoff = max(backoff, int(retry_after.strip()))
    time.sleep(backoff)


def _error(status, body):
    try:
        doc = json.loads(body)
        type_, message = doc.get('__type', 'HTTP%d' % status), doc.get('message', '')
    except ValueError:
        type_, message = 'HTTP%d' % status, 'HTTP %d' % status
    cls = NotFound if status == 404 else Denied if status in (401, 403) else Unavailable if status == 503 else PscacheError
    return cls(status, type_, message)


def _get(path, params):
    port = int(os.environ.get('PARAMETERS_SECRETS_EXTENSION_HTTP_PORT') or 2773)
    # urlencode quotes every reserved character (quote_via=quote: spaces as %20, `+` as %2B).
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    request = urllib.request.Request('http://127.0.0.1:%d%s?%s' % (port, path, query),
                                     headers={'X-Aws-Parameters-Secrets-Token': _token()})
    for attempt in range(RETRIES + 1):
        last = attempt == RETRIES
        try:
            with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                return json.loads(response.read().decode('utf-8'))
        except urllib.error.HTTPError as e:
            body = e.read().decode('utf-8', 'replace')
            if e.code in RETRY_STATUS and not last:
                _pause(attempt, e.headers.get('Retry-After'))
                continue
            raise _error(e.code, body) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            # Refused, reset, or silent for TIMEOUT_SECONDS (urllib's timeout is per socket operation).
            if not last:
                _pause(attempt)
                continue
            reason = getattr(e, 'reason', e)
            raise Unavailable(0, type(reason).__name__, 'pscache on port %d did not answer: %s' % (port, reason)) from None


def get_parameter(parameter_name, decrypt=False, version=None, label=None):
    """A parameter's value. decrypt=True for a SecureString's plaintext."""
    params = {'name': parameter_name}
    if version is not None:
        params['version'] = str(version)
    if label is not None:
        params['label'] = label
    if decrypt:
        params['withDecryption'] = 'true'
    return _get('/systemsmanager/parameters/get', params)['Parameter']['Value']


def get_secret(secret_name, version_stage=None, version_id=None):
    """A secret's SecretString as str, or its SecretBinary as bytes."""
    params = {'secretId': secret_name}
    if version_stage is not None:
        params['versionStage'] = version_stage
    if version_id is not None:
        params['versionId'] = version_id
    doc = _get('/secretsmanager/get', params)
    if doc.get('SecretString') is not None:
        return doc['SecretString']
    return base64.b64decode(doc['SecretBinary'])
