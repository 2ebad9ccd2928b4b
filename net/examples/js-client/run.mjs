// The JS client 0.9.0 against `echo_node`: connects over WebSocket, sends one particle
// to the node and waits for it to come back (run with DEBUG='fluence:*' to see the
// client receive it and run its interpreter on it).
//
//   cargo run -p braid-net --example echo_node &
//   cd net/examples/js-client && npm install --no-save @fluencelabs/js-client@0.9.0
//   DEBUG='fluence:*' node run.mjs
//
// Node.js 20 lacks Promise.withResolvers, which packages the client pulls in call.
if (!Promise.withResolvers) {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
const { createClient } = await import('@fluencelabs/js-client');
const relay = '/ip4/127.0.0.1/tcp/9991/ws/p2p/12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7';
const t0 = Date.now();
const client = await createClient(relay, { debug: { printParticleId: true } });
console.log('connected in', Date.now() - t0, 'ms as', client.getPeerId());
const script = `(xor (seq (call "12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7" ("op" "noop") []) (call %init_peer_id% ("callbackSrv" "response") ["ok"])) (call %init_peer_id% ("errorHandlingSrv" "error") [%last_error% 0]))`;
const particle = await client.internals.createNewParticle(script, 6000);
console.log('particle', particle.id);
const result = await new Promise((resolve) => {
  client.internals.initiateParticle(particle, (r) => resolve(['success', r]), (e) => resolve(['error', String(e)]));
  setTimeout(() => resolve(['timeout']), 8000);
});
console.log('result', JSON.stringify(result));
await new Promise((r) => setTimeout(r, 2000));
await client.disconnect();
process.exit(0);
