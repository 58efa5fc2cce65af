// Help text of `pscache get`, apart from the command so the CLI can print it without loading the client.
export const GET_USAGE = `pscache get parameter NAME [--decrypt] [--version N | --label L] [--json] [--port N]
pscache get secret ID [--version VERSION_ID] [--stage STAGE] [--json] [--port N]

Reads one value from a running pscache (or the official extension) and prints it: a string with a
newline, a binary secret as raw bytes, or with --json the daemon's whole JSON answer. The token comes
from PARAMETERS_SECRETS_EXTENSION_TOKEN (a value or file:///path), else AWS_SESSION_TOKEN, else
AWS_CONTAINER_AUTHORIZATION_TOKEN; the port from --port, else PARAMETERS_SECRETS_EXTENSION_HTTP_PORT,
else 2773. Each attempt may take 1 s; failures that pass (no answer, 429, 502, 503, 504) are retried
twice.
  --decrypt        decrypt a SecureString (withDecryption=true)
  --version V      parameter version number, or secret VersionId
  --label L        parameter label
  --stage S        secret staging label (AWSCURRENT, AWSPREVIOUS, ...)
  --json           print the whole answer instead of the value
  --port N         daemon port

Exit status: 0 found, 2 not found, 3 denied (AWS refused, or the token is wrong or missing),
4 pscache unreachable (not running, not answering, shutting down), 1 anything else (including usage).`;
