"""A local stand-in for the parts of Stripe's API the control plane uses
(live Stripe cannot be reached from the build machines). It follows
Stripe's documented requests: form-encoded POSTs with `Authorization:
Bearer sk_...`, Idempotency-Key honoured (the same key answers the same),
Checkout sessions, invoice items, invoices and their finalization; and it
sends events to a webhook signed as Stripe signs them (`Stripe-Signature:
t=TIMESTAMP,v1=HMAC-SHA256(secret, "TIMESTAMP.BODY")`)."""
import hashlib
import hmac
import http.client
import http.server
import json
import threading
import time
import urllib.parse


def signature(secret, body, t=None):
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class StripeStandIn:
    def __init__(self, secret_key, webhook_secret):
        self.secret_key, self.webhook_secret = secret_key, webhook_secret
        self.requests = []  # (path, form) in order
        self.sessions, self.invoices, self.items = {}, {}, {}
        self.idempotent = {}
        self.counter = 0
        self.lock = threading.Lock()
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
                status, answer = standin.handle(self.path, self.headers, form)
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()

    def next_id(self, prefix):
        self.counter += 1
        return f"{prefix}_test_{self.counter}"

    def handle(self, path, headers, form):
        if headers.get("Authorization") != f"Bearer {self.secret_key}":
            return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
        if headers.get("Content-Type") != "application/x-www-form-urlencoded":
            return 400, {"error": {"type": "invalid_request_error", "message": "form-encoded bodies only"}}
        with self.lock:
            key = headers.get("Idempotency-Key")
            if key and (path, key) in self.idempotent:
                return 200, self.idempotent[(path, key)]
            self.requests.append((path, form))
            status, answer = self.route(path, form)
            if key and status == 200:
                self.idempotent[(path, key)] = answer
            return status, answer

    def missing(self, form, *names):
        absent = [n for n in names if not form.get(n)]
        if absent:
            return 400, {"error": {"type": "invalid_request_error", "message": f"Missing required param: {absent[0]}."}}
        return None

    def route(self, path, form):
        if path == "/v1/checkout/sessions":
            bad = self.missing(form, "mode", "line_items[0][price]", "success_url", "cancel_url")
            if bad:
                return bad
            sid = self.next_id("cs")
            session = {"id": sid, "object": "checkout.session", "mode": form["mode"],
                       "client_reference_id": form.get("client_reference_id"),
                       "customer_email": form.get("customer_email"), "price": form["line_items[0][price]"],
                       "url": f"https://checkout.stripe.com/c/pay/{sid}", "status": "open"}
            self.sessions[sid] = session
            return 200, session
        if path == "/v1/invoiceitems":
            bad = self.missing(form, "customer", "amount", "currency")
            if bad:
                return bad
            iid = self.next_id("ii")
            self.items[iid] = {"id": iid, "object": "invoiceitem", "customer": form["customer"],
                               "amount": int(form["amount"]), "currency": form["currency"],
                               "description": form.get("description"), "invoice": None}
            return 200, self.items[iid]
        if path == "/v1/invoices":
            bad = self.missing(form, "customer")
            if bad:
                return bad
            iid = self.next_id("in")
            pending = [i for i in self.items.values() if i["customer"] == form["customer"] and i["invoice"] is None]
            if form.get("pending_invoice_items_behavior") == "include":
                for item in pending:
                    item["invoice"] = iid
            metadata = {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")}
            self.invoices[iid] = {"id": iid, "object": "invoice", "customer": form["customer"], "status": "draft",
                                  "metadata": metadata,
                                  "amount_due": sum(i["amount"] for i in self.items.values() if i["invoice"] == iid)}
            return 200, self.invoices[iid]
        if path.startswith("/v1/invoices/") and path.endswith("/finalize"):
            iid = path.split("/")[3]
            if iid not in self.invoices:
                return 404, {"error": {"type": "invalid_request_error", "message": f"No such invoice: '{iid}'"}}
            self.invoices[iid]["status"] = "open"
            return 200, self.invoices[iid]
        return 404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL (POST: {path})"}}

    # Events, as Stripe sends them to the webhook endpoint.
    def event(self, type_, obj, event_id=None):
        return {"id": event_id or self.next_id("evt"), "object": "event", "type": type_, "api_version": "2024-06-20",
                "created": int(time.time()), "data": {"object": obj}}

    def send(self, webhook, event, secret=None, t=None):
        """POSTs the event, signed; (status, answer)."""
        body = json.dumps(event).encode()
        host, port = webhook.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        path = "/" + webhook.split("//", 1)[1].split("/", 1)[1]
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/json",
            "Stripe-Signature": signature(secret or self.webhook_secret, body, t)})
        r = conn.getresponse()
        text = r.read().decode()
        conn.close()
        return r.status, json.loads(text) if text else None

    def checkout_completed(self, session_id):
        session = dict(self.sessions[session_id])
        session.update({"status": "complete", "customer": self.next_id("cus"),
                        "subscription": self.next_id("sub")})
        self.sessions[session_id] = session
        return self.event("checkout.session.completed", session)

    def invoice_paid(self, invoice_id):
        invoice = self.invoices[invoice_id]
        invoice["status"] = "paid"
        return self.event("invoice.paid", invoice)
