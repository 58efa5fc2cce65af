# The source article's handler, on the rewritten helpers. Locally, against `npm start`:
#   python3 examples/python/lambda_function.py
import json

from pscache_helpers import PscacheError, get_parameter, get_secret


def lambda_handler(event, context):
    try:
        db_password = get_secret('prod/db/password')
        api_endpoint = get_parameter('/myapp/api-endpoint')
    except PscacheError as e:
        # Status and __type say what happened (404 missing, 403 denied, 0 not running); never the value.
        print('Failed to retrieve configuration: %s %s %s' % (e.status, e.type, e))
        raise

    # Use db_password and api_endpoint; never log or return secrets.
    return {'statusCode': 200, 'body': json.dumps({'apiEndpoint': api_endpoint,
                                                   'dbPasswordLength': len(db_password)})}


if __name__ == '__main__':
    print(json.dumps(lambda_handler({}, None)))
