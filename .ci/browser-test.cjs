// Opens each page in headless Chromium, checks the diagram against the transcript
// (or the text of `braid explain`), clicks a step, takes a screenshot. Prints
// `N passed, M failed`; exits 1 on any failure.
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const [dir, ...cases] = process.argv.slice(2);

// Lanes: every invoked peer and every next peer, in order of first appearance.
function expectedFromTranscript(transcript) {
  const lanes = [];
  const add = (p) => { if (!lanes.includes(p)) lanes.push(p); };
  for (const step of transcript.steps) {
    add(step.peer);
    step.next_peers.forEach(add);
  }
  return { lanes: lanes.length, steps: transcript.steps.length };
}

// `braid explain` prints `…: N steps on M peers (…)` first.
function expectedFromText(text) {
  const m = text.match(/: (\d+) steps on (\d+) peers/);
  return { steps: Number(m[1]), lanes: Number(m[2]) };
}

(async () => {
  // A fresh profile each run.
  const profile = fs.mkdtempSync(path.join(require('os').tmpdir(), 'braid-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1500, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let passed = 0, failed = 0;
  for (const name of cases) {
    const problems = [];
    try {
      const transcript = path.join(dir, `${name}.transcript.json`);
      const expected = fs.existsSync(transcript)
        ? expectedFromTranscript(JSON.parse(fs.readFileSync(transcript, 'utf8')))
        : expectedFromText(fs.readFileSync(path.join(dir, `${name}.txt`), 'utf8'));
      const page = await browser.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      const requests = [];
      page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
      await page.goto('file://' + path.resolve(dir, `${name}.html`));
      const seen = await page.evaluate(() => ({
        lanesAttr: Number(document.querySelector('#diagram').dataset.lanes),
        stepsAttr: Number(document.querySelector('#diagram').dataset.steps),
        lanes: document.querySelectorAll('#diagram .lane').length,
        steps: document.querySelectorAll('#diagram .step').length,
      }));
      if (seen.lanes !== expected.lanes || seen.lanesAttr !== expected.lanes) {
        problems.push(`lanes: ${seen.lanes} drawn, data-lanes ${seen.lanesAttr}, expected ${expected.lanes}`);
      }
      if (seen.steps !== expected.steps || seen.stepsAttr !== expected.steps) {
        problems.push(`steps: ${seen.steps} drawn, data-steps ${seen.stepsAttr}, expected ${expected.steps}`);
      }
      // Click the first step: it becomes the selected one and the script shows notes.
      await page.click('#diagram .step[data-step="1"]');
      const after = await page.evaluate(() => ({
        selected: Array.from(document.querySelectorAll('#diagram .step.selected')).map((e) => e.dataset.step),
        notes: Array.from(document.querySelectorAll('#script .note')).filter((e) => e.textContent).length,
        details: document.querySelector('#details').textContent,
      }));
      if (after.selected.join() !== '1') problems.push(`selected after click: ${after.selected}`);
      if (after.notes === 0) problems.push('no notes on the script after the click');
      if (!after.details.startsWith('#1 ')) problems.push(`details: ${after.details.slice(0, 80)}`);
      // And the last step again, for the screenshot.
      await page.click(`#diagram .step[data-step="${expected.steps}"]`);
      await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: false });
      if (errors.length) problems.push(`page errors: ${errors.join('; ')}`);
      if (requests.length) problems.push(`external requests: ${requests.join(', ')}`);
      await page.close();
    } catch (e) {
      problems.push(String(e));
    }
    if (problems.length) {
      failed += 1;
      console.log(`FAIL ${name}`);
      problems.forEach((p) => console.log(`  ${p}`));
    } else {
      passed += 1;
    }
  }
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
  console.log(`browser: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
