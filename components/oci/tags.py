"""Freeform tags every OCI resource of the project carries (who owns it, which stack, what role)."""


def freeform_tags(stack: str, role: str) -> dict[str, str]:
    return {"managed-by": "pulumi", "stack": stack, "role": role}
