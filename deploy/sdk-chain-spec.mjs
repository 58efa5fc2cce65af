// Prints the npm spec of the AWS SDK's default credential chain, the one package pscache's bundle loads at
// run time (profile, web identity for EKS IRSA, IMDS for EC2): the version package-lock.json pins, else
// the range package.json declares. The Dockerfile installs exactly this beside the bundle.
import { readFileSync } from 'node:fs';

const NAME = '@aws-sdk/credential-provider-node';
const read = (file) => JSON.parse(readFileSync(new URL(`../${file}`, import.meta.url), 'utf8'));

let spec;
try {
  spec = read('package-lock.json').packages?.[`node_modules/${NAME}`]?.version;
} catch {
  // no lock file: fall back to the declared range
}
if (!spec) {
  const pkg = read('package.json');
  spec = pkg.peerDependencies?.[NAME] ?? pkg.dependencies?.[NAME] ?? pkg.devDependencies?.[NAME];
}
if (!spec) {
  process.stderr.write(`sdk-chain-spec: package.json declares no ${NAME}\n`);
  process.exit(1);
}
process.stdout.write(`${NAME}@${spec}\n`);
