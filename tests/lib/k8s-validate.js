// Validates Kubernetes manifests against the API schemas that the npm
// package kubernetes-models ships: every document of every file given must
// name a known apiVersion and kind and pass its schema (types, required
// fields, enums; the schemas allow fields they do not name). Prints one
// line per document; exits 1 when any fails.
'use strict';
const fs = require('fs');
const path = require('path');
const YAML = require(path.join(__dirname, 'node', 'node_modules', 'yaml'));
const models = path.join(__dirname, 'node', 'node_modules', 'kubernetes-models');

let failed = 0;
for (const file of process.argv.slice(2)) {
    const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
    docs.forEach((d, i) => {
        const where = `${file}#${i + 1}`;
        if (d.errors.length) {
            console.log(`not ok ${where}: ${d.errors[0].message}`);
            failed++;
            return;
        }
        const obj = d.toJS();
        if (obj === null)
            return;
        const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/')
                                                              : ['', obj.apiVersion];
        const mod = path.join(models, group || '', version, obj.kind + '.js');
        if (!/^[A-Za-z0-9.]*$/.test(group) || !/^v[0-9a-z]+$/.test(version) || !fs.existsSync(mod)) {
            console.log(`not ok ${where}: unknown kind ${obj.apiVersion} ${obj.kind}`);
            failed++;
            return;
        }
        const Model = require(mod)[obj.kind];
        try {
            new Model(obj).validate();
            console.log(`ok ${where}: ${obj.kind} ${obj.metadata && obj.metadata.name}`);
        } catch (e) {
            console.log(`not ok ${where}: ${obj.kind}: ${e.message.split('\n').slice(0, 5).join(' ')}`);
            failed++;
        }
    });
}
process.exit(failed ? 1 : 0);
