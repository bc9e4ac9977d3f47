/**
 * `npm run doctor -- --project P [--region R] [--portal-service-account SA]`: checks a deployed
 * project with the Google client libraries (Application Default Credentials) and prints a table;
 * exits 1 when a check fails. The portal's account defaults to PORTAL_SERVICE_ACCOUNT, as in
 * deploy.sh; without it, any service account may hold the invoker role of the HTTP functions.
 */
import { parseArgs } from 'node:util';
import { allRows, formatTable } from './doctor/checks.ts';
import { gather } from './doctor/gather.ts';

const { values } = parseArgs({
  options: {
    project: { type: 'string' },
    region: { type: 'string', default: 'us-central1' },
    'portal-service-account': { type: 'string' },
    // host:port of a stand-in speaking the REST APIs over plain HTTP (tests)
    endpoint: { type: 'string' },
  },
});
if (!values.project) {
  process.stderr.write(
    'usage: npm run doctor -- --project PROJECT [--region REGION] [--portal-service-account SA]\n',
  );
  process.exit(2);
}
const portal = values['portal-service-account'] ?? process.env.PORTAL_SERVICE_ACCOUNT;
const endpoint = values.endpoint ? /^([\w.-]+):(\d+)$/.exec(values.endpoint) : undefined;
if (values.endpoint && !endpoint) {
  process.stderr.write(`--endpoint must be host:port (got "${values.endpoint}")\n`);
  process.exit(2);
}
const rows = allRows(
  await gather({
    project: values.project,
    region: values.region,
    ...(portal ? { portalServiceAccount: portal } : {}),
    ...(endpoint ? { endpoint: { host: endpoint[1]!, port: Number(endpoint[2]) } } : {}),
  }),
);
process.stdout.write(formatTable(rows));
process.exit(rows.every((r) => r.ok) ? 0 : 1);
