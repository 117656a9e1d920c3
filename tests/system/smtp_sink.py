"""A real SMTP server on loopback for tests (Python 3.11's smtpd), keeping
each message it is given: (envelope sender, recipients, data)."""
import asyncore
import smtpd
import threading
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)


class SmtpSink(smtpd.SMTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), None, decode_data=False)
        self.port = self.socket.getsockname()[1]
        self.messages = []
        self.thread = threading.Thread(target=asyncore.loop, kwargs={"timeout": 0.1}, daemon=True)
        self.thread.start()

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        self.messages.append((mailfrom, rcpttos, data.decode()))

    def stop(self):
        self.close()
