// Validates Kubernetes objects against the API's schemas with npm's kubernetes-models (offline).
// Usage: node validate_k8s.mjs MODELS_PREFIX < objects.json (a JSON array of objects)
// Prints one JSON array: for each object, null when it is valid, else the reasons. Exits 0 when all are
// valid, 1 when some are not, 2 when it could not validate at all.
import { existsSync, readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const prefix = process.argv[2];
const models = prefix + "/node_modules/kubernetes-models";
if (!existsSync(models + "/package.json")) {
  process.stderr.write(`kubernetes-models is not installed under ${prefix}\n`);
  process.exit(2);
}
const objects = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const object of objects) {
  // Models are at GROUP/VERSION/KIND ("apps/v1/Deployment"), the core group's at VERSION/KIND.
  const folder = object.apiVersion;
  let model;
  try {
    // By file: the package exports these modules for `import` only, under names a file URL avoids.
    const file = `${models}/${folder}/${object.kind}.js`;
    model = (await import(pathToFileURL(file).href))[object.kind];
    if (typeof model !== "function") throw new Error(`${file} has no class ${object.kind}`);
  } catch (e) {
    results.push(`no schema for ${object.apiVersion} ${object.kind}: ${e.message}`);
    continue;
  }
  try {
    new model(object).validate();
    results.push(null);
  } catch (e) {
    results.push(e.message);
  }
}
process.stdout.write(JSON.stringify(results));
process.exit(results.every((r) => r === null) ? 0 : 1);
