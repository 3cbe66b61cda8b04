// Baseline receiver for the ingest benchmark: Express verifies a Stripe signature and returns 200.
//
// It checks the request as Hookline's Stripe scheme (ingest/schemes/stripe.py) does: the raw
// body, HMAC-SHA256 over "<t>.<body>" with the whole whsec_ secret as the key, any v1 entry may
// match, and the timestamp within a tolerance. It stores nothing.
//
// Usage: STRIPE_WEBHOOK_SECRET=whsec_... node server.js PORT
"use strict";

const crypto = require("node:crypto");
const express = require("express");

const TOLERANCE_SECONDS = 300;
const port = Number.parseInt(process.argv[2] || process.env.PORT || "", 10);
const secret = process.env.STRIPE_WEBHOOK_SECRET;

if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error("usage: node server.js PORT (a TCP port, 1 to 65535)");
  process.exit(2);
}
if (!secret) {
  console.error("STRIPE_WEBHOOK_SECRET is not set; export the secret that signs the requests");
  process.exit(2);
}

// Returns the timestamp and the v1 signatures of a Stripe-Signature value, or null.
function parseSignatureHeader(value) {
  let timestamp = null;
  const signatures = [];
  for (const item of value.split(",")) {
    const separator = item.indexOf("=");
    if (separator < 0) {
      continue;
    }
    const key = item.slice(0, separator).trim();
    const text = item.slice(separator + 1).trim();
    if (key === "t") {
      timestamp = text;
    } else if (key === "v1") {
      signatures.push(text);
    }
  }
  return timestamp === null ? null : { timestamp, signatures };
}

function verifyStripe(header, body, nowSeconds) {
  if (typeof header !== "string") {
    return "missing_header";
  }
  const parsed = parseSignatureHeader(header);
  if (parsed === null || !/^\d+$/.test(parsed.timestamp)) {
    return "malformed_header";
  }

  const expected = crypto
    .createHmac("sha256", secret)
    .update(`${parsed.timestamp}.`)
    .update(body)
    .digest();
  const matches = parsed.signatures.some((text) => {
    const candidate = Buffer.from(text, "hex");
    return candidate.length === expected.length && crypto.timingSafeEqual(candidate, expected);
  });
  if (!matches) {
    return "no_matching_signature";
  }
  if (Math.abs(nowSeconds - Number(parsed.timestamp)) > TOLERANCE_SECONDS) {
    return "timestamp_outside_tolerance";
  }
  return null;
}

const app = express();
app.disable("x-powered-by");

app.get("/healthz", (request, response) => {
  response.json({ status: "ok" });
});

app.post(
  "/webhooks/:source",
  express.raw({ type: "application/json", limit: "1mb" }),
  (request, response) => {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const failure = verifyStripe(
      request.get("stripe-signature"),
      body,
      Math.floor(Date.now() / 1000),
    );
    if (failure !== null) {
      response.status(401).json({ error: failure });
      return;
    }
    response.status(200).json({ received: true });
  },
);

const server = app.listen(port, "127.0.0.1", () => {
  console.log(`express baseline listening on http://127.0.0.1:${port}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    // Keep-alive connections from the load generator may hold close() open.
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
