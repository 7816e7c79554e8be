"""A DNS the test controls, for the SSRF guard's tests: /etc/hosts is the machine's, not theirs."""

import asyncio
import socket
from typing import Any

# A global (public) address the test's DNS answers first: nothing is ever sent to it.
PUBLIC = "93.184.215.14"


class Dns:
    """The test's DNS for names under `.rebind.test`: each lookup gets the next answer, the last
    one kept (public when the template is saved, the operator's network when it is sent). It is
    the event loop's getaddrinfo, which the guarded resolver asks, and so does a socket
    connecting to a name without it: every lookup the process makes, as a DNS server would see it."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        system = loop.getaddrinfo

        async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if not str(host).endswith(".rebind.test"):
                return await system(host, port, *args, **kwargs)
            self.asked.append(str(host))
            address = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            if ":" in address:
                return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

        loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]
