// Test guest: a JavaScript app that tries to reach the network through
// the wasi:http interfaces its toolchain imports (JavaScript has no file
// or socket API here). Each attempt is caught and reported; domicile must
// make every one fail inside the app.
//
// Input: {"port": P}, or {"crash": true} to end the run by throwing what
// no WIT result can carry.

function attempt(action) {
  try {
    return { got: String(action()).slice(0, 200) };
  } catch (e) {
    return { refused: String(e).slice(0, 300) };
  }
}

async function attemptAsync(action) {
  try {
    const response = await action();
    return { got: `status ${response.status}: ${(await response.text()).slice(0, 200)}` };
  } catch (e) {
    return { refused: String(e).slice(0, 300) };
  }
}

export async function run(input) {
  const { port, crash } = JSON.parse(input);
  console.log('hostile js guest starting');
  // A service must fail with a string; anything else aborts the interpreter.
  if (crash) throw { not: 'a string' };
  const report = {
    fetch: await attemptAsync(() => fetch(`http://127.0.0.1:${port}/steal`)),
    'fetch-post': await attemptAsync(() =>
      fetch(`http://127.0.0.1:${port}/steal`, { method: 'POST', body: 'secrets' }),
    ),
    'fetch-name': await attemptAsync(() => fetch('https://example.com/')),
    environment: attempt(() => (typeof process === 'undefined' ? 'no process object' : JSON.stringify(process.env))),
  };
  console.error('hostile js guest done');
  return JSON.stringify(report);
}
