# Replays the fixtures as an API server for agent-smoke.sh: lists from ../Fixtures, watches held open, writes logged and accepted.
import http.server, sys, time, os
F = sys.argv[2]
M = {"/api/v1/nodes": "nodes.json", "/api/v1/pods": "pods.json", "/api/v1/services": "services.json", "/api/v1/namespaces": "namespaces.json",
     "/apis/discovery.k8s.io/v1/endpointslices": "endpointslices.json", "/apis/networking.k8s.io/v1/networkpolicies": "networkpolicies.json",
     "/apis/loom.io/v1alpha1/loomnodes": "loomnodes.json"}
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        path, _, q = self.path.partition("?")
        sys.stderr.write(f"{self.command} {self.path}\n")
        if "watch=1" in q:
            self.send_response(200); self.send_header("Content-Type", "application/json"); self.send_header("Transfer-Encoding", "chunked"); self.end_headers()
            self.wfile.flush(); time.sleep(30); return
        body = open(os.path.join(F, M[path]), "rb").read() if path in M else b'{"kind":"Status","code":404}'
        self.send_response(200 if path in M else 404); self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_PATCH(self): self._write()
    def do_POST(self): self._write()
    def _write(self):
        n = int(self.headers.get("Content-Length", "0")); body = self.rfile.read(n)
        sys.stderr.write(f"{self.command} {self.path} {self.headers.get('Content-Type')} {body.decode()}\n")
        out = b"{}"
        self.send_response(201 if self.command == "POST" else 200); self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(out))); self.end_headers(); self.wfile.write(out)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
