// Runs a handler module's `handler` once with an empty event and prints what it returned, so the Lambda
// examples can be tried against `npm start` without deploying them:
//   node examples/invoke.mjs examples/lambda-node/index.mjs
//   npx tsx examples/invoke.mjs examples/lambda-typescript/handler.ts
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const file = process.argv[2];
if (!file) {
  console.error('usage: node examples/invoke.mjs HANDLER_FILE');
  process.exit(1);
}
const { handler } = await import(pathToFileURL(resolve(file)).href);
console.log(JSON.stringify(await handler({})));
