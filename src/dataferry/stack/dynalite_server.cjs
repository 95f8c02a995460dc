// The embedded stack's DynamoDB endpoint: dynalite, its tables in LevelDB on disk.
//
// Run by dataferry (stack/embedded_dynamodb_server.py) with NODE_PATH naming the
// node_modules folder that holds the pinned dynalite:
//   node dynalite_server.cjs --host 127.0.0.1 --port 0 --path DIR [--state-file F]
//        [--engine NAME] [dynalite options]
// What it adds to dynalite's own command:
// - the state file: written (whole, by rename) once the port is open, with the pid, port
//   and start time, so dataferry can tell this process from any other holding the pid;
//   removed at a clean exit;
// - a clean stop on SIGTERM/SIGINT: close the HTTP server and LevelDB, exit within 10 s;
// - a second server on the same folder exits at once (LevelDB's own lock), instead of
//   listening and failing every request;
// - a client that vanishes mid-request no longer ends the server: dynalite 4.0.0 rethrows
//   a request's 'error' event ('aborted', ECONNRESET); any other uncaught error still
//   ends the process.
'use strict'
const fs = require('fs')
const path = require('path')
const argv = require('minimist')(process.argv.slice(2))

const STOP_GRACE_MS = 10000

process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) return
  console.error(err)
  process.exit(1)
})

function writeState (port) {
  if (!argv['state-file']) return
  const state = {
    pid: process.pid,
    port,
    engine: argv.engine || 'dynalite',
    data_dir: path.resolve(path.dirname(argv['state-file'])),
    started: (Date.now() - process.uptime() * 1000) / 1000,
  }
  const tmp = `${argv['state-file']}.${process.pid}.tmp`
  fs.writeFileSync(tmp, JSON.stringify(state, null, 1) + '\n')
  fs.renameSync(tmp, argv['state-file'])
}

function removeState () {
  if (!argv['state-file']) return
  try {
    const state = JSON.parse(fs.readFileSync(argv['state-file'], 'utf8'))
    if (state.pid === process.pid) fs.unlinkSync(argv['state-file'])
  }
  catch (err) { /* already gone */ }
}

async function refuseSharedFolder () {
  if (!argv.path) return
  const { Level } = require('level')
  const db = new Level(argv.path)
  try {
    await db.open()
  }
  catch (err) {
    const why = (err.cause && err.cause.message) || err.message
    console.error(`dynalite: cannot open ${argv.path}: ${why}`)
    process.exit(3)
  }
  await db.close()
}

async function main () {
  await refuseSharedFolder()
  const server = require('dynalite')(argv)
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    setTimeout(() => { removeState(); process.exit(0) }, STOP_GRACE_MS).unref()
    server.close(() => { removeState(); process.exit(0) })
    server.closeIdleConnections()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  server.listen(argv.port || 0, argv.host || '127.0.0.1', () => {
    const port = server.address().port
    writeState(port)
    console.log('dynalite listening at http://%s:%s', argv.host || '127.0.0.1', port)
  })
}

main()
