"""What eyeshim knows about the system's DNS configuration.

``resolvconf``: ``/etc/resolv.conf`` (and ``LOCALDOMAIN``, ``RES_OPTIONS``)
read the way glibc reads them.
"""
