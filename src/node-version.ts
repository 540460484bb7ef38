// Imported first by every entry point (dist/cli.js, the Lambda extension): ES modules are evaluated in import order,
// so this runs before any other module's code. Older Node.js would boot and silently round 38-digit numbers.
export const REQUIRED_NODE_MAJOR = 24;

/** The one-line refusal for `version` (process.versions.node), or undefined when it is new enough. */
export function nodeVersionProblem(version: string, execPath = process.execPath): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (major >= REQUIRED_NODE_MAJOR) return undefined;
  return (
    `dynamorm-sidecar needs Node.js ${REQUIRED_NODE_MAJOR} or newer, but this is Node.js ${version} (${execPath}). ` +
    `Run it through npm (\`npm install\` puts the project's node@${REQUIRED_NODE_MAJOR} first on PATH for npm scripts: \`npm start\`), ` +
    `or install Node.js ${REQUIRED_NODE_MAJOR} (\`nvm install ${REQUIRED_NODE_MAJOR}\`, or https://nodejs.org).`
  );
}

const problem = nodeVersionProblem(process.versions.node);
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
