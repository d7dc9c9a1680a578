// Evaluates the close launcher's JSONata (template.yaml, CloseLauncherStateMachine) on a few
// inputs: the business date is the UTC day before the scheduled time (across month, year and
// leap-day boundaries), an explicit business_date wins, and the execution is
// close-{business_date}-1. Uses the jsonata package that asl-validator brings.
// Usage: NODE_PATH=<dir>/node_modules node scripts/check_launcher.js <definition.json>
"use strict";
const fs = require("fs");
const jsonata = require("jsonata");

const definition = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const body = (s) => s.replace(/^\{%/, "").replace(/%\}$/, "");
const dateExpr = body(definition.States.BusinessDate.Assign.business_date);
const nameExpr = body(definition.States.StartDailyClose.Arguments.Name);
const inputExpr = body(definition.States.StartDailyClose.Arguments.Input);

const cases = [
  [{ scheduled_time: "2026-11-21T02:00:00Z" }, "2026-11-20"],
  [{ scheduled_time: "2027-01-01T00:30:00Z" }, "2026-12-31"],
  [{ scheduled_time: "2028-03-01T02:00:00Z" }, "2028-02-29"],
  [{ business_date: "2026-11-18", scheduled_time: "2026-11-21T02:00:00Z" }, "2026-11-18"],
  // Started by hand without input: the day before the execution's start.
  [{}, "2026-11-30"],
];

(async () => {
  let bad = 0;
  for (const [input, expected] of cases) {
    const states = { input, context: { Execution: { StartTime: "2026-12-01T02:00:00.123Z" } } };
    const date = await jsonata(dateExpr).evaluate({}, { states });
    const name = await jsonata(nameExpr).evaluate({}, { states, business_date: date });
    const startInput = await jsonata(inputExpr).evaluate({}, { states, business_date: date });
    const ok =
      date === expected &&
      name === `close-${expected}-1` &&
      JSON.stringify(startInput) === JSON.stringify({ business_date: expected });
    if (!ok) {
      bad += 1;
      console.error(
        `launcher: input ${JSON.stringify(input)} gave ${date}, ${name}, ` +
          `${JSON.stringify(startInput)}; expected ${expected}`,
      );
    }
  }
  process.exit(bad ? 1 : 0);
})().catch((e) => {
  console.error(`launcher: ${e.message}`);
  process.exit(1);
});
