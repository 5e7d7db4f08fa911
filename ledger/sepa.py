"""SEPA: checking bank account details (IBAN with its ISO 13616 mod-97 check digits, BIC) and
writing a batch of credit transfers as an ISO 20022 `pain.001.001.03` file (with `sepaxml`,
which also validates the file against the schema)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sepaxml import SepaTransfer

from ledger.errors import LedgerError

IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
BIC = re.compile(r"^[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?$")
SCHEMA = "pain.001.001.03"


@dataclass(frozen=True, slots=True)
class Transfer:
    """One credit transfer: to whom, how much (minor units), and the ids on the statement."""

    name: str
    iban: str
    bic: str | None
    amount: int
    end_to_end_id: str
    description: str


def normalise_iban(text: str) -> str:
    """The IBAN in its electronic form (no spaces, capitals); LedgerError unless its check
    digits hold."""
    iban = re.sub(r"\s+", "", text or "").upper()
    if not IBAN.match(iban):
        raise LedgerError("IBAN must be a country code, 2 check digits and 11 to 30 letters "
                          "or digits")
    rearranged = iban[4:] + iban[:4]
    if int("".join(str(int(char, 36)) for char in rearranged)) % 97 != 1:
        raise LedgerError("IBAN check digits do not match: check it for a typo")
    return iban


def normalise_bic(text: str | None) -> str | None:
    """The BIC in capitals, or None when empty; LedgerError when it is not 8 or 11 characters
    of the BIC form."""
    bic = re.sub(r"\s+", "", text or "").upper()
    if not bic:
        return None
    if not BIC.match(bic):
        raise LedgerError("BIC must be 8 or 11 letters and digits (e.g. DEUTDEFF)")
    return bic


def credit_transfer_file(debtor: Mapping[str, Any], currency: str,
                         transfers: Sequence[Transfer], execution_date: date) -> tuple[str, bytes]:
    """(message id, XML) of one batch paying every transfer from the `debtor` account
    (`name`, `iban`, optional `bic`)."""
    config: dict[str, Any] = {"name": debtor["name"], "IBAN": debtor["iban"], "batch": True,
                              "currency": currency}
    if debtor.get("bic"):
        config["BIC"] = debtor["bic"]
    sepa = SepaTransfer(config, schema=SCHEMA, clean=True)
    for item in transfers:
        payment: dict[str, Any] = {"name": item.name, "IBAN": item.iban, "amount": item.amount,
                                   "execution_date": execution_date,
                                   "description": item.description,
                                   "endtoend_id": item.end_to_end_id}
        if item.bic:
            payment["BIC"] = item.bic
        sepa.add_payment(payment)
    return sepa.msg_id, sepa.export(validate=True, pretty_print=True)
