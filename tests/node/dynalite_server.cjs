// dynalite for the tests, started through its own API, surviving clients that vanish.
//
// dynalite 4.0.0 rethrows a request's 'error' event: a client killed while sending a
// request ('aborted', ECONNRESET) ends the whole server. The crash-safety tests SIGKILL
// dataferry mid-request on purpose, so that one error is absorbed here; any other
// uncaught error still ends the process, as it would without this file.
// Usage: node dynalite_server.cjs --host 127.0.0.1 --port N [--path DIR] [dynalite options]
const dynalite = require('dynalite')
const argv = require('minimist')(process.argv.slice(2))

process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) return
  console.error(err)
  process.exit(1)
})

const server = dynalite(argv).listen(argv.port || 4567, argv.host || undefined, () => {
  const address = server.address()
  console.log('Dynalite listening at: http://%s:%s', argv.host || 'localhost', address.port)
})
