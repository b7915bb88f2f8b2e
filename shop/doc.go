// Package shop is the demo shop and the ledger's browser SDK: what a merchant's web site does
// with the payment ledger, served by paymentd when it runs with the Toss simulator.
//
// It owns three things:
//
//   - The SDK, GET /sdk/v1/pay.js (LedgerPay: requestPayment, confirm, watch), plain
//     JavaScript shaped after Toss's, and its example page GET /sdk/v1/example.html.
//   - The shop's pages: GET /shop/ (products), POST /shop/checkout (a Buy button, no script
//     needed), GET /shop/pay/{orderId} (the order, a button that opens the payment window and
//     a QR code of the window for a phone, with the status live), GET /shop/success (the
//     successUrl: confirm, then the status live until SUCCESS) and GET /shop/fail (the
//     failUrl: the failure's code and message).
//   - The shop's backend, the part of a merchant's server the browser talks to:
//     POST /shop/api/checkout {"productId"}, POST /shop/api/confirm {"paymentKey","orderId",
//     "amount"} and GET /shop/api/orders/{orderId}/events (the ledger's status stream,
//     reduced to "status" events).
//
// The merchant's API key stays on the server. Only ledgerClient holds it; it goes on requests
// to the ledger and nowhere else. The browser sees the shop's routes, which pass on the
// ledger's answers field by field (a status stream carries orderId, status, event type,
// approval time and failure, not the payment's history or keys), and the ledger's refusals
// by code and message, while the shop's own trouble (the key refused, rate limits, the ledger
// down) shows as a plain "cannot take payments right now" and is logged. Prices come from
// the catalogue, never from the browser, and the ledger refuses a confirm whose amount is not
// the order's (AMOUNT_MISMATCH), which is the check Toss asks merchants to make.
//
// The pages work with the keyboard and a screen reader (real buttons and links, labels, live
// regions for the status, WCAG AA contrast), show times in KST and amounts in won as people
// read them ("25,000원"), load no outside assets, and are served with a Content-Security-Policy
// that allows scripts from the shop's own origin only. Cross-origin posts are refused
// (http.CrossOriginProtection) and the JSON routes take application/json only, so another
// site cannot start a checkout or a confirm in a buyer's browser.
//
// Not a real shop: there are no buyer accounts or carts (every order is "demo-buyer"'s), so
// anyone who knows an orderId (a random UUID) can open its paying page or watch its status.
package shop
