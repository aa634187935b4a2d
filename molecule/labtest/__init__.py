"""What the molecule scenarios' tests share, one job per module:

- lab: a scenario's hosts, inventory and playbook runs, and their results;
- hosts: programs and probes run on a lab host (programs/ holds the Python
  programs as files);
- front_door: requests through a lab's proxy, as an outside client makes
  them, and the proxy's logs;
- traffic: a client that keeps logging through the front door while
  something happens, counting every answer;
- browser: a person's page in headless chromium;
- scan: which ports of a host answer.

molecule/conftest.py holds the fixtures; no test module imports another.
"""
