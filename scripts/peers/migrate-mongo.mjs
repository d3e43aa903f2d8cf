// The figures of migrate-mongo that scripts/bench prints for this library, measured the same way
// against the server in MONGODB_URI: commands and wall time of a no-op `up` with 10, 100 and
// 1,000 migrations (median of 15), and applying 100 trivial migrations (empty `up` functions,
// like the benchmark's own). Commands are counted with the driver's command monitoring.
// Run it with scripts/bench-peers.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { config, database, up } from "migrate-mongo";

const uri = process.env.MONGODB_URI;
if (!uri) {
  throw new Error("MONGODB_URI is not set; run scripts/bench-peers");
}
const ROUNDS = 15;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "migrate-mongo-bench-"));

function migrationsDir(count) {
  const dir = path.join(scratch, `m${count}`);
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 1; i <= count; i++) {
    const name = `${String(i).padStart(4, "0")}-bulk.cjs`;
    fs.writeFileSync(
      path.join(dir, name),
      "module.exports = { async up() {}, async down() {} };\n",
    );
  }
  return dir;
}

async function connect(dir, databaseName) {
  config.set({
    mongodb: { url: uri, databaseName, options: { monitorCommands: true } },
    migrationsDir: dir,
    changelogCollectionName: "changelog",
    lockCollectionName: "changelog_lock",
    lockTtl: 0,
    migrationFileExtension: ".cjs",
    useFileHash: false,
    moduleSystem: "commonjs",
  });
  const { db, client } = await database.connect();
  let commands = 0;
  const names = new Map();
  client.on("commandStarted", (event) => {
    commands += 1;
    names.set(event.commandName, (names.get(event.commandName) ?? 0) + 1);
  });
  return {
    db,
    client,
    reset() {
      commands = 0;
      names.clear();
    },
    count: () => commands,
    names: () => Object.fromEntries(names),
  };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const ms = (n) => `${n.toFixed(2)} ms`;

console.log(`migrate-mongo ${JSON.parse(fs.readFileSync(new URL("./node_modules/migrate-mongo/package.json", import.meta.url))).version}, node ${process.version}`);
console.log(`no-op up (everything applied), median of ${ROUNDS}:`);
console.log(`  ${"migrations".padStart(10)}  ${"commands".padStart(8)}  ${"wall time".padStart(10)}`);
for (const count of [10, 100, 1000]) {
  const name = `peer_mm_noop_${count}_${process.pid}`;
  const c = await connect(migrationsDir(count), name);
  await c.db.dropDatabase();
  await up(c.db, c.client);
  const times = [];
  let commands = 0;
  for (let round = 0; round < ROUNDS; round++) {
    c.reset();
    const started = process.hrtime.bigint();
    const applied = await up(c.db, c.client);
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
    commands = c.count();
    if (applied.length !== 0) throw new Error("a no-op applied something");
  }
  console.log(`  ${String(count).padStart(10)}  ${String(commands).padStart(8)}  ${ms(median(times)).padStart(10)}`);
  await c.db.dropDatabase();
  await c.client.close();
}

{
  // Median of APPLY_ROUNDS, each on a fresh database, as scripts/bench measures ours.
  const APPLY_ROUNDS = 9;
  const times = [];
  let commands = 0;
  let names = {};
  for (let round = 0; round < APPLY_ROUNDS; round++) {
    const name = `peer_mm_apply_100_${process.pid}_${round}`;
    const c = await connect(migrationsDir(100), name);
    await c.db.dropDatabase();
    c.reset();
    const started = process.hrtime.bigint();
    const applied = await up(c.db, c.client);
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (applied.length !== 100) throw new Error(`applied ${applied.length}, not 100`);
    commands = c.count();
    names = c.names();
    await c.db.dropDatabase();
    await c.client.close();
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(`\napplying 100 trivial migrations, median of ${APPLY_ROUNDS} (each on a fresh database): ${commands} commands (${(commands / 100).toFixed(2)} per migration), ${ms(median(times))} (range ${ms(sorted[0])} to ${ms(sorted[sorted.length - 1])})`);
  console.log(`  by command: ${JSON.stringify(names)}`);
}
fs.rmSync(scratch, { recursive: true, force: true });
